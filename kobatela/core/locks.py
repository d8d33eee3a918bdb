"""PostgreSQL session advisory locks: one beat instance runs a periodic job at a time;
one live request holds an idempotency key (``kobatela.core.idempotency``, which
takes and releases it inside its claim's statements where it can)."""

from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from typing import Iterator

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for a job name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def session_lock(name: str) -> Iterator[bool]:
    """Yield True when this connection now holds the lock named ``name``,
    False when another session does.

    A session-level ``pg_try_advisory_lock``: it never waits, and is released
    on exit — or by PostgreSQL when the connection dies, which is what lets
    others tell a live holder from a dead one. On SQLite, the single-process
    embedded default, there is nothing to coordinate: always True.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = lock_id(name)
    acquired = try_lock(key)
    try:
        yield acquired
    finally:
        if acquired:
            unlock(key)


def try_lock(key: int) -> bool:
    """``pg_try_advisory_lock``: take the session lock ``key`` now, or say another session holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        return cursor.fetchone()[0]


def unlock(key: int) -> None:
    """Release this session's lock ``key``; a connection that is gone has released it already."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    except DatabaseError:
        pass


JOB_STAMP_PREFIX = "job:"


@contextmanager
def periodic_job(name: str) -> Iterator[bool]:
    """The lock of a periodic job: one beat instance runs it at a time (see :func:`session_lock`).

    A run that held the lock and finished without raising stamps
    ``SchedulerHeartbeat(name="job:<name>")``: ``kobatela_periodic_job_age_seconds``
    (the sweeper lag) is the age of that stamp."""
    with session_lock(name) as acquired:
        yield acquired
        if acquired:
            _stamp(JOB_STAMP_PREFIX + name)


def _stamp(name: str) -> None:
    from django.utils import timezone

    from kobatela.core.models import SchedulerHeartbeat

    try:
        SchedulerHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})
    except DatabaseError:
        logger.warning("periodic job stamp not written", extra={"job": name})
