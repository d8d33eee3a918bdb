"""Health: liveness, readiness (database, migrations, cache, broker, storage) and a detailed view.

Readiness answers names and ok/fail only — no versions, hosts or secrets.
The cache and broker probes make one attempt each under the Redis clients'
own timeouts (``REDIS_CONNECT_TIMEOUT_SECONDS``/``REDIS_TIMEOUT_SECONDS``,
0.25 s by default), side by side on two threads of this process, while the
database checks run on the request's own thread (its connection): a Redis
that is down or frozen costs a probe one timeout, not one per check, and is
reported well within a second. Whatever has not answered by
:data:`REDIS_CHECKS_DEADLINE_SECONDS` is reported "fail".
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from kobatela.core.models import SchedulerHeartbeat

logger = logging.getLogger(__name__)

_migrations_known_applied = False

# Sections apps add to the detailed health (PSP, OCR, AI…): name → callable
# answering a JSON-ready dict. Filled from each app's ``AppConfig.ready()``.
DETAIL_SECTIONS: dict[str, Callable[[], dict]] = {}


def register_detail_section(name: str, section: Callable[[], dict]) -> None:
    DETAIL_SECTIONS[name] = section


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_migrations() -> str:
    global _migrations_known_applied
    if _migrations_known_applied:  # once applied, they stay applied for this process
        return "ok"
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return "fail"
    _migrations_known_applied = True
    return "ok"


def check_cache() -> str:
    probe = f"health:{uuid.uuid4().hex}"
    cache.set(probe, "1", 10)
    value = cache.get(probe)
    cache.delete(probe)
    return "ok" if value == "1" else "fail"


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "ok"  # no broker: tasks run in-process after commit (embedded default)
    if settings.CELERY_BROKER_URL.startswith("memory://"):
        return "fail"  # an in-process broker reaches no worker
    from celery import current_app  # kobatela.celery's app; not imported, as it imports the core

    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0)  # one attempt: connect and PING (kombu's Redis channel)
    return "ok"


def check_storage() -> str:
    default_storage.exists("health-probe")
    return "ok"


READINESS_CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "migrations": check_migrations,
    "cache": check_cache,
    "broker": check_broker,
    "storage": check_storage,
}


# Checks that only wait on Redis: run side by side, off the request's thread
# (each keeps its own cache connection there, reused from probe to probe).
REDIS_CHECKS = frozenset({"cache", "broker"})
REDIS_CHECKS_DEADLINE_SECONDS = 0.9
_redis_checks_pool: ThreadPoolExecutor | None = None
_redis_checks_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _redis_checks_pool
    with _redis_checks_pool_lock:  # made on first use, in the serving process (after gunicorn's fork)
        if _redis_checks_pool is None:
            _redis_checks_pool = ThreadPoolExecutor(max_workers=len(REDIS_CHECKS), thread_name_prefix="readiness")
        return _redis_checks_pool


def _run_check(name: str, check: Callable[[], str]) -> str:
    try:
        return check()
    except Exception as exc:  # a probe must report, not raise: any failure is "fail"
        logger.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
        return "fail"


def run_checks() -> dict[str, str]:
    started = time.monotonic()
    pending = {name: _pool().submit(contextvars.copy_context().run, _run_check, name, check)  # logs keep the request id
               for name, check in READINESS_CHECKS.items() if name in REDIS_CHECKS}
    results = {name: _run_check(name, check) for name, check in READINESS_CHECKS.items() if name not in pending}
    for name, future in pending.items():
        try:
            results[name] = future.result(timeout=max(0.0, started + REDIS_CHECKS_DEADLINE_SECONDS - time.monotonic()))
        except FutureTimeout:
            logger.warning("readiness check failed", extra={"check": name, "error": "no answer in time"})
            results[name] = "fail"
    return {name: results[name] for name in READINESS_CHECKS}


def heartbeat_age_seconds() -> int | None:
    try:
        beat = SchedulerHeartbeat.objects.filter(name="beat").values_list("beat_at", flat=True).first()
    except DatabaseError:
        return None
    return int((timezone.now() - beat).total_seconds()) if beat else None
