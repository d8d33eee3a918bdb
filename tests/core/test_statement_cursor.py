"""``DatabaseWrapper.statement_cursor`` (``kobatela.core.postgresql``): one driver
cursor per connection for the deposit's statements and every savepoint, with
everything ``connection.cursor()`` guarantees — the liveness check and
reconnection, Django's exceptions, the broken-transaction and thread guards —
and nothing hidden from whoever watches queries."""

from __future__ import annotations

import threading

import pytest
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    ProgrammingError,
    connection,
    connections,
    transaction,
)
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from kobatela.core.models import IdempotencyKey
from tests.conftest import _keyed_client
from tests.factories import make_escrow
from tests.support.database import terminate_backend

pytestmark = pytest.mark.django_db(transaction=True)


def _run(sql: str, params=(), *, on=None):
    with (on or connection).statement_cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall() if cursor.description else None


@pytest.fixture
def cursors_created(monkeypatch) -> list:
    """Every cursor the connection creates from now on (Django's own method, observed)."""
    created = []
    create = connection.create_cursor

    def observed(*args, **kwargs):
        cursor = create(*args, **kwargs)
        created.append(cursor)
        return cursor

    monkeypatch.setattr(connection, "create_cursor", observed)
    return created


def test_statements_share_one_driver_cursor_per_connection(cursors_created):
    assert _run("SELECT %s::int + 1", [1]) == [(2,)]
    assert _run("SELECT %s::text", ["two"]) == [("two",)]
    assert len(cursors_created) == 1

    old_pid = _run("SELECT pg_backend_pid()")[0][0]
    connection.close()
    assert _run("SELECT pg_backend_pid()")[0][0] != old_pid  # a new connection, and a cursor of its own
    assert len(cursors_created) == 2


def test_a_warm_deposit_creates_no_cursor(cursors_created):
    """Every statement of a deposit (savepoints included) runs on the shared cursor;
    before it, Django made and closed a cursor for each of the twelve."""
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))

    def deposit(key):
        return sender.post(f"/api/v1/escrows/{escrow.pk}/deposit", {"amount": "1.00"}, format="json",
                           HTTP_IDEMPOTENCY_KEY=key)

    assert deposit("warm-up").status_code == 200  # the API key's first read, its last_used_at
    cursors_created.clear()
    assert deposit("counted").status_code == 200
    assert cursors_created == []


def test_a_connection_the_server_closed_is_replaced_before_the_statement():
    """The request's liveness check runs first, as with ``connection.cursor()``."""
    old_pid = terminate_backend()
    connection.health_check_done = False  # a new request

    assert _run("SELECT pg_backend_pid()")[0][0] != old_pid


def test_errors_are_djangos_and_mark_the_connection():
    IdempotencyKey.objects.create(api_key=_keyed_client(["sender"]).api_key, key="k", fingerprint="f",
                                  status=IdempotencyKey.Status.IN_PROGRESS)
    existing = IdempotencyKey.objects.get()
    with pytest.raises(IntegrityError):  # data errors leave the connection trusted, as Django's cursor does
        _run("INSERT INTO core_idempotencykey (api_key_id, key, fingerprint, status, created_at)"
             " VALUES (%s, %s, 'f', 'IN_PROGRESS', now())", [existing.api_key_id, "k"])
    assert connection.errors_occurred is False

    with pytest.raises(ProgrammingError):
        _run("SELECT * FROM no_such_table")
    assert connection.errors_occurred is True  # checked before the connection is reused


def test_refused_in_a_transaction_that_already_failed():
    api_key = _keyed_client(["sender"]).api_key
    IdempotencyKey.objects.create(api_key=api_key, key="taken", fingerprint="f")
    with transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic(savepoint=False):
            IdempotencyKey.objects.create(api_key=api_key, key="taken", fingerprint="f")
        with pytest.raises(TransactionManagementError):
            _run("SELECT 1")


def test_a_savepoint_rolled_back_keeps_the_outer_work():
    api_key = _keyed_client(["sender"]).api_key
    with transaction.atomic():
        IdempotencyKey.objects.create(api_key=api_key, key="kept", fingerprint="f")
        with pytest.raises(IntegrityError), transaction.atomic():
            IdempotencyKey.objects.create(api_key=api_key, key="kept", fingerprint="f")
        IdempotencyKey.objects.create(api_key=api_key, key="after", fingerprint="f")
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == ["after", "kept"]


def test_whoever_watches_queries_sees_them():
    with CaptureQueriesContext(connection) as captured:
        _run("SELECT %s::int", [7])
        with transaction.atomic(), transaction.atomic():
            pass
    statements = [q["sql"] for q in captured.captured_queries]
    assert "::int" in statements[0]
    assert any(sql.startswith("SAVEPOINT") for sql in statements)

    seen = []
    with connection.execute_wrapper(lambda execute, sql, *rest: seen.append(sql) or execute(sql, *rest)):
        _run("SELECT 8")
    assert seen == ["SELECT 8"]


def test_another_thread_may_not_use_this_threads_connection():
    this_threads = connections[DEFAULT_DB_ALIAS]  # the object; ``connection`` looks it up per thread
    this_threads.ensure_connection()
    errors = []

    def use():
        try:
            _run("SELECT 1", on=this_threads)
        except DatabaseError as exc:
            errors.append(exc)

    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    assert len(errors) == 1 and "same thread" in str(errors[0])
