"""Metrics and logs of every process, on a production-like stack: gunicorn
with 4 sync workers, two Celery workers (one prefork pool of 2, one solo) and
a beat, sharing one metrics directory (issue #18).

* Counters add up across processes and families: web, workers and beat share
  one multiprocess directory, so ONE scrape of the web after N requests spread
  over the gunicorn workers and M tasks spread over the Celery workers' processes
  says N and M; each family's start removes only its own files of a previous run.
* Every log line of web (gunicorn's own and access lines included), workers
  and beat is JSON, and none holds a full IBAN, an email or a secret.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from kobatela.core.metrics import HOST
from tests.support.observed_stack import STALE_TASK, ObservedStack, file_totals, total

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


def test_each_family_removes_only_its_own_files_of_a_previous_run_when_it_starts(stack):
    names = {family: path.name for family, path in stack.stale.items()}
    # The web's start removed the web's (and the one-off commands') files, not the workers'.
    assert names["web"] not in stack.files_after_web_start and names["cmd"] not in stack.files_after_web_start
    assert names["worker-w1"] in stack.files_after_web_start and names["worker-w9"] in stack.files_after_web_start
    # w1's start removed its own; nobody removed those of w9, which did not start again.
    now = {p.name for p in stack.metrics_dir.glob("*.db")}
    assert names["worker-w1"] not in now and names["worker-w9"] in now
    # Every file is named by family, host and pid: pids repeating across containers never collide.
    assert all(re.fullmatch(rf"[a-z]+(_[a-z]+)?_[A-Za-z0-9-]+\.{re.escape(HOST)}\.\d+\.db", n) for n in now), now


def test_one_scrape_of_the_web_shows_the_counters_of_4_gunicorn_workers_and_2_celery_workers(stack):
    requests, tasks, task = 60, 12, STALE_TASK  # a task beat does not run within the hour
    requests_total = "django_http_requests_total_by_view_transport_method_total"
    before = stack.scrape(stack.web_metrics_url)
    assert total(before, requests_total, view="health-ready") == 0  # the previous run's 1000 are gone
    assert total(before, "kobatela_celery_tasks_total", task=task) == 0
    for _ in range(requests):
        assert stack.get("/health/ready").status == 200
    for _ in range(tasks):
        stack.send_task(task)

    def tasks_counted():
        page = stack.scrape(stack.web_metrics_url)
        return page if total(page, "kobatela_celery_tasks_total", task=task) >= tasks else None

    assert _wait(tasks_counted, 60)
    time.sleep(1)  # nothing is counted twice afterwards
    page = stack.scrape(stack.web_metrics_url)  # THE one scrape
    served = total(page, requests_total, view="health-ready")
    done = total(page, "kobatela_celery_tasks_total", task=task, outcome="success")
    web_files = file_totals(stack.metrics_dir, "counter_web.*.db", "django_http_requests_total_by_view_transport_method",
                            view="health-ready")
    worker_files = file_totals(stack.metrics_dir, "counter_worker-*.db", "kobatela_celery_tasks", task=task)
    print(f"\none scrape of the web: {served:.0f} requests (sent {requests}) from {web_files}; "
          f"{done:.0f} tasks (sent {tasks}) from {worker_files}")
    assert served == requests and done == tasks
    assert total(page, "kobatela_celery_task_seconds_count", task=task) == tasks
    assert total(page, "kobatela_ops_left_by_w9_total") == 1000  # another family's files are added, not removed
    # The work really was spread: requests over several gunicorn processes, tasks over several
    # processes of two Celery workers, each writing its own file.
    assert len(web_files) >= 2, web_files
    assert len(worker_files) >= 2, worker_files
    assert sum(web_files.values()) == requests and sum(worker_files.values()) == tasks
    assert {name.split("_")[1].split(".")[0] for name in worker_files} == {"worker-w1", "worker-w2"}, worker_files

    # A worker's own endpoint (for a worker on another host) shows its family only: no double count.
    assert _worker_total(stack, "kobatela_celery_tasks_total", task=task) == tasks
    assert total(stack.scrape(stack.worker_metrics_url("w1")), requests_total) == 0


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
