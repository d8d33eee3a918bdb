"""Health: liveness, readiness (database, migrations, cache, broker, storage) and a detailed view.

Readiness answers names and ok/fail only — no versions, hosts or secrets.
"""

from __future__ import annotations

import logging
import uuid
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
    from kobatela.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
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


def run_checks() -> dict[str, str]:
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # a probe must report, not raise: any failure is "fail"
            logger.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
            results[name] = "fail"
    return results


def heartbeat_age_seconds() -> int | None:
    try:
        beat = SchedulerHeartbeat.objects.filter(name="beat").values_list("beat_at", flat=True).first()
    except DatabaseError:
        return None
    return int((timezone.now() - beat).total_seconds()) if beat else None
