import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from kobatela.celery import app
from kobatela.core.locks import lock_id, periodic_job
from kobatela.core.models import SchedulerHeartbeat

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_second_holder_of_a_periodic_job_lock_is_refused():
    other = connections.create_connection("default")
    try:
        with periodic_job("demo") as first:
            assert first is True
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id("demo")])
                assert cursor.fetchone()[0] is False
        with periodic_job("demo") as again:
            assert again is True  # released on exit
    finally:
        other.close()


def test_beat_schedule_is_in_one_place():
    """The whole schedule, written out: a job dropped, added, renamed or retimed fails here."""
    assert app.conf.beat_schedule == {
        "heartbeat": {"task": "kobatela.core.tasks.heartbeat", "schedule": 30.0},
        "purge-idempotency-keys": {"task": "kobatela.core.tasks.purge_idempotency_keys", "schedule": 3600.0},
        "escrow-deadlines": {"task": "escrow.tasks.apply_deadlines", "schedule": 300.0},
        "escrow-inspections": {"task": "escrow.tasks.release_due_inspections", "schedule": 60.0},
        "refund-sweep": {"task": "escrow.tasks.sweep_refunds", "schedule": 120.0},
        "payout-sweep": {"task": "payments.tasks.sweep_payouts", "schedule": 60.0},
        "ocr-sweep": {"task": "proofs.tasks.sweep_ocr", "schedule": 300.0},
        "ai-sweep": {"task": "proofs.tasks.sweep_ai", "schedule": 120.0},
        "webhook-deliveries-sweep": {"task": "webhooks.tasks.sweep_deliveries", "schedule": 30.0},
        "expire-mandates": {"task": "spend.tasks.expire_mandates", "schedule": 300.0},
        "seal-audit-log": {"task": "kobatela.audit.tasks.seal_audit_log", "schedule": 5.0},
    }
    assert app.conf.task_acks_late is True


def test_every_scheduled_task_is_a_registered_task_beat_can_call():
    """A task renamed or moved in code but not in the schedule would never run:
    beat would keep sending a name no worker knows."""
    app.loader.import_default_modules()  # what a worker does at start: autodiscover every app's tasks.py
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, f"{entry['task']} is not a registered task"
        inspect.signature(app.tasks[entry["task"]].run).bind()  # beat sends no arguments


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:task_always_eager has no effect on send_task")
def test_a_real_worker_runs_the_heartbeat_through_redis():
    """Start `celery -A kobatela worker` against the test Redis and database."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kobatela.settings",
        "DJANGO_ENV": "test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "kobatela", "worker", "--pool", "solo", "--concurrency", "1",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-Q", f"hb-{os.getpid()}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        app.send_task("kobatela.core.tasks.heartbeat", queue=f"hb-{os.getpid()}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not SchedulerHeartbeat.objects.filter(name="beat").exists():
            time.sleep(0.2)
        beat = SchedulerHeartbeat.objects.get(name="beat")
        assert (timezone.now() - beat.beat_at).total_seconds() < 60
    finally:
        worker.terminate()
        worker.wait(timeout=20)
