"""Metrics and logs of every process, on a production-like stack: gunicorn
with 4 sync workers, two Celery workers (one prefork pool of 2, one solo) and
a beat, each in its own process group (issue #18).

* Counters add up across processes: one scrape of the web after N requests
  spread over the gunicorn workers says N; one scrape of each worker's
  endpoint after M tasks says M between them.
* Every log line of web (gunicorn's own and access lines included), workers
  and beat is JSON, and none holds a full IBAN, an email or a secret.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.support.observed_stack import ObservedStack, total

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IBAN = "FR7630006000011234567890189"
EMAIL = "jeanne.payee@example.org"
SECRET = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ="
RAW = re.compile(r"FR76\s?3000|[A-Za-z0-9._%+\-]{2,}@example\.(?:org|com)|whsec_[A-Za-z0-9+/=]{8,}|kbt_[A-Za-z0-9]{8}_[A-Za-z0-9_\-]{8,}")


def _wait(condition, seconds: float, step: float = 0.3):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


@pytest.fixture(scope="module")
def stack():
    with ObservedStack(workers=4) as running:
        running.start_worker("w1", pool="prefork", concurrency=2)
        running.start_worker("w2", pool="solo")
        running.start_beat()
        yield running


def _worker_total(stack, name: str, **labels: str) -> float:
    return sum(total(stack.scrape(stack.worker_metrics_url(w)), name, **labels) for w in ("w1", "w2"))


def test_counters_of_4_gunicorn_workers_and_2_celery_workers_equal_the_work_done(stack):
    requests, tasks = 60, 12
    for _ in range(requests):
        assert stack.get("/health/ready").status == 200
    web_dir = Path(stack.env["PROMETHEUS_MULTIPROC_DIR"])
    assert not (web_dir / "counter_999999.db").exists()  # emptied at start
    writers = {p.name for p in web_dir.glob("counter_*.db")}
    page = stack.scrape(stack.web_metrics_url)
    served = total(page, "django_http_requests_total_by_view_transport_method_total", view="health-ready")
    print(f"\nweb: {requests} requests over {len(writers)} gunicorn processes, one scrape says {served:.0f}")
    assert len(writers) >= 2, writers  # the requests really were spread over several processes
    assert served == requests

    for _ in range(tasks):
        stack.send_task("kobatela.core.tasks.heartbeat")
    done = _wait(lambda: _worker_total(stack, "kobatela_celery_tasks_total", task="kobatela.core.tasks.heartbeat",
                                       outcome="success") >= tasks, 60)
    per_worker = {w: total(stack.scrape(stack.worker_metrics_url(w)), "kobatela_celery_tasks_total",
                           task="kobatela.core.tasks.heartbeat") for w in ("w1", "w2")}
    print(f"workers: {tasks} tasks, scrapes say {per_worker}")
    assert done and sum(per_worker.values()) == tasks
    time.sleep(1)  # nothing is counted twice afterwards
    assert _worker_total(stack, "kobatela_celery_tasks_total", task="kobatela.core.tasks.heartbeat") == tasks
    assert _worker_total(stack, "kobatela_celery_task_seconds_count", task="kobatela.core.tasks.heartbeat") == tasks


def test_the_web_exports_the_domain_gauges_from_shared_state(stack):
    stack.send_task("kobatela.core.tasks.heartbeat")
    stack.send_task("kobatela.core.tasks.purge_idempotency_keys")
    assert _wait(lambda: total(stack.scrape(stack.web_metrics_url), "kobatela_queue_depth", queue="celery") == 0
                 and "kobatela_periodic_job_age_seconds{job=\"purge_idempotency_keys\"}"
                 in stack.scrape(stack.web_metrics_url), 30)
    page = stack.scrape(stack.web_metrics_url)
    for name in ("kobatela_payouts", "kobatela_proofs_pending_review", "kobatela_ocr_jobs",
                 "kobatela_webhook_deliveries", "kobatela_payouts_oldest_due_seconds",
                 "kobatela_webhook_deliveries_oldest_due_seconds", "kobatela_ai_breaker_open",
                 "kobatela_ai_daily_call_limit"):
        assert f"\n{name}" in page, name
    assert 'kobatela_periodic_job_age_seconds{job="beat"}' in page
    up = [line for line in page.splitlines() if line.startswith("kobatela_metrics_collector_up{")]
    assert up and all(line.endswith(" 1.0") for line in up), up


def test_a_worker_logs_a_message_body_with_the_iban_email_and_secret_masked(stack):
    # A message no worker knows is logged with its whole body: where a payload would leak.
    stack.send_task("kobatela.nowhere.unknown_task", IBAN, EMAIL, SECRET)
    line = _wait(lambda: next((ln for w in ("w1", "w2") for ln in stack.log(w).splitlines()
                               if "unknown_task" in ln and "unregistered" in ln.lower()), None), 30)
    assert line, stack.log("w1")[-2000:]
    record = json.loads(line)
    assert "****0189" in record["message"] and "j***@example.org" in record["message"]
    assert IBAN not in line and EMAIL not in line and SECRET not in line


def test_a_task_log_line_carries_the_task_id_and_the_originating_request_id(stack):
    task_id = stack.send_task("kobatela.core.tasks.purge_idempotency_keys", request_id="req-ops-18-abc")

    def find():
        for w in ("w1", "w2"):
            for ln in stack.log(w).splitlines():
                if task_id in ln and "purged idempotency keys" in ln:
                    return json.loads(ln)
        return None

    record = _wait(find, 30)
    assert record, (stack.log("w1") + stack.log("w2"))[-3000:]
    assert record["request_id"] == "req-ops-18-abc"
    assert record["task_id"] == task_id and record["task_name"] == "kobatela.core.tasks.purge_idempotency_keys"


def test_zz_every_log_line_of_web_workers_and_beat_is_json_and_masked(stack):
    """Last in this module: it reads what the other tests made every process log."""
    stack.get("/api/v1/escrows?note=" + EMAIL)  # an access line with an email in its query string
    time.sleep(1)
    logs = {name: stack.log(name) for name in ("web", "w1", "w2", "beat")}
    kinds = set()
    for name, text in logs.items():
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert lines, f"{name} logged nothing"
        for ln in lines:
            try:
                record = json.loads(ln)
            except ValueError:
                pytest.fail(f"{name}: not JSON: {ln[:300]}")
            assert {"ts", "level", "logger", "message"} <= set(record), (name, ln[:300])
            assert not RAW.search(ln), f"{name}: unmasked data: {ln[:300]}"
            kinds.add((name, record["logger"]))
    print("\nlog lines checked: " + ", ".join(f"{n}={len(t.splitlines())}" for n, t in logs.items()))
    assert ("web", "gunicorn.access") in kinds  # (gunicorn.error lines too when its level lets them through)
    assert any(n == "beat" for n, _ in kinds)
