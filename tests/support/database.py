"""The database, unreachable for a while, from the app's side: the Django
connection is closed and pointed at a loopback port where nothing listens,
so every query meets a refused connection (psycopg's OperationalError), as
when PostgreSQL is stopped. Leaving the block points it back; the next query
reconnects, as after a restart."""

from __future__ import annotations

from contextlib import contextmanager

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
