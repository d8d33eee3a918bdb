"""The database as the tests look at it from the app's side.

``database_unreachable``: the Django connection is closed and pointed at a
loopback port where nothing listens, so every query meets a refused connection
(psycopg's OperationalError), as when PostgreSQL is stopped. Leaving the block
points it back; the next query reconnects, as after a restart.

``advisory_locks_held``: the advisory locks this connection's session holds.

``terminate_backend``: the server ends this connection's session, as a
restart or an administrator would; returns once the connection can tell."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import psycopg
from django.db import connection

from tests.support.ports import free_port


@contextmanager
def database_unreachable():
    saved = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", str(free_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = saved


def advisory_locks_held() -> set[int]:
    """The keys of the advisory locks (one bigint each) the app's connection holds now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks"
                       " WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return {row[0] for row in cursor.fetchall()}


def terminate_backend() -> int:
    """``pg_terminate_backend`` of the app's connection (as the superuser); its old backend pid."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with psycopg.connect(os.environ["DATABASE_SUPERUSER_URL"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:  # the FATAL message is on its way
        time.sleep(0.01)
    return pid
