"""PostgreSQL advisory locks for periodic jobs: one beat instance runs a job at a time."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator

from django.db import connection


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for a job name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def periodic_job(name: str) -> Iterator[bool]:
    """Yield True when this process holds the job's lock, False when another does.

    A session-level ``pg_try_advisory_lock``: it never waits, and is released
    on exit (or when the connection dies). On SQLite, the single-process
    embedded default, there is nothing to coordinate and the job always runs.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = lock_id(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
