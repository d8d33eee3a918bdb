import threading
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from kobatela.audit import services as audit
from kobatela.audit.models import AuditLog
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_record_masks_personal_data_and_chains():
    first = audit.record("system:test", "thing.done", ("thing", 1), {"iban": "FR7630006000011234567890189", "email": "jane@example.test"})
    second = audit.record("system:test", "thing.done", ("thing", 2), {"note": "call +243 812 345 678"})
    assert "FR7630006000011234567890189" not in str(first.data)
    assert "jane@example.test" not in str(first.data)
    assert "812 345 678" not in str(second.data)
    assert second.prev_hash == first.row_hash
    assert audit.audit_chain_verify().ok


@pytest.mark.parametrize("sql", ["UPDATE audit_auditlog SET action = 'x'", "DELETE FROM audit_auditlog"])
def test_database_refuses_rewrites(sql):
    audit.record("system:test", "thing.done", ("thing", 1), {})
    with pytest.raises(DatabaseError):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditLog.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_database_refuses_truncate():
    """On a raw connection of its own, outside the test suite's flush allowance."""
    audit.record("system:test", "thing.done", ("thing", 1), {})
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("host", "port", "user", "dbname", "password")}) as raw:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            raw.execute("TRUNCATE audit_auditlog")
    assert AuditLog.objects.count() >= 1


def test_orm_update_and_delete_are_refused():
    row = audit.record("system:test", "thing.done", ("thing", 1), {})
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).update(action="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        row.delete()


def _tamper(row_id: int, **sql_set):
    """Edit a row behind the triggers' back, as a rogue superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditlog DISABLE TRIGGER USER")
        for column, value in sql_set.items():
            cursor.execute(f"UPDATE audit_auditlog SET {column} = %s WHERE id = %s", [value, row_id])
        cursor.execute("ALTER TABLE audit_auditlog ENABLE TRIGGER USER")


def test_verify_names_the_first_tampered_row():
    rows = [audit.record("system:test", "thing.done", ("thing", i), {"n": i}) for i in range(5)]
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    assert "5 rows verified" in out.getvalue()

    _tamper(rows[2].pk, data='{"n": 99}')
    report = audit.audit_chain_verify()
    assert report.first_broken_id == rows[2].pk
    with pytest.raises(CommandError, match=f"id={rows[2].pk}"):
        call_command("verify_audit_chain", stdout=StringIO())


def test_verify_catches_a_removed_row():
    rows = [audit.record("system:test", "thing.done", ("thing", i), {"n": i}) for i in range(3)]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditlog DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM audit_auditlog WHERE id = %s", [rows[1].pk])
        cursor.execute("ALTER TABLE audit_auditlog ENABLE TRIGGER USER")
    assert audit.audit_chain_verify().first_broken_id == rows[2].pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain():
    barrier = threading.Barrier(10)

    def write(i):
        try:
            barrier.wait()
            for j in range(5):
                with transaction.atomic():
                    audit.record("system:test", "thing.done", ("thing", i * 10 + j), {"i": i, "j": j})
        finally:
            connection.close()

    before = AuditLog.objects.count()
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(write, range(10)))
    report = audit.audit_chain_verify()
    assert report.ok and report.checked == AuditLog.objects.count() == before + 50


def test_alerts_endpoint_filters_by_type(support_api, sender_api):
    audit.alert_raise(type="payout_gave_up", message="Payout 4 gave up")
    audit.alert_raise(type="transfer_refused", message="Receiver not allow-listed")
    body = support_api.get("/api/v1/alerts?type=payout_gave_up").json()
    assert [a["type"] for a in body["results"]] == ["payout_gave_up"]
    assert set(body) == {"results", "next", "previous"}
    assert_error(sender_api.get("/api/v1/alerts"), 403, "permission_denied")
