"""``kobatela.core.postgresql``: a persistent connection is checked before each
request's first query from its socket, not with a ``SELECT 1`` — and a
connection the server closed is still found dead, so the request reconnects
instead of failing."""

from __future__ import annotations

import tempfile

import pytest
from django.db import connection

from tests.support.database import terminate_backend

pytestmark = pytest.mark.django_db(transaction=True)


def _wire_traffic_of(check) -> str:
    """What ``check()`` sends and receives on the connection's socket (libpq's trace)."""
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        try:
            check()
        finally:
            pgconn.untrace()
        trace.seek(0)
        return trace.read()


def test_the_backend_in_use_is_ours():
    assert connection.settings_dict["ENGINE"] == "kobatela.core.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_healthy_idle_connection_is_usable_without_a_round_trip():
    connection.ensure_connection()
    results = []

    traffic = _wire_traffic_of(lambda: results.append(connection.is_usable()))

    assert results == [True]
    assert traffic == ""  # nothing sent, nothing read
    assert _wire_traffic_of(lambda: connection.cursor().execute("SELECT 1")) != ""  # the trace does see queries


def test_a_connection_the_server_terminated_is_not_usable_and_is_replaced():
    old_pid = terminate_backend()

    assert not connection.is_usable()

    # What Django does before a request's first query with CONN_HEALTH_CHECKS.
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


def test_inside_a_transaction_the_check_asks_the_server():
    connection.ensure_connection()
    connection.set_autocommit(False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        results = []
        traffic = _wire_traffic_of(lambda: results.append(connection.is_usable()))
        assert results == [True] and "SELECT 1" in traffic
    finally:
        connection.rollback()
        connection.set_autocommit(True)
