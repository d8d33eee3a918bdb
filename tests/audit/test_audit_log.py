import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from kobatela.audit import chain
from kobatela.audit import services as audit
from kobatela.audit.models import AuditLog, AuditSeal
from tests.conftest import assert_error
from tests.support.pg_roles import connect_as, superuser

pytestmark = pytest.mark.django_db


def test_record_masks_personal_data_and_seals_in_order():
    first = audit.record("system:test", "thing.done", ("thing", 1), {"iban": "FR7630006000011234567890189", "email": "jane@example.test"})
    second = audit.record("system:test", "thing.done", ("thing", 2), {"note": "call +243 812 345 678"})
    assert "FR7630006000011234567890189" not in str(first.data)
    assert "jane@example.test" not in str(first.data)
    assert "812 345 678" not in str(second.data)
    assert audit.audit_seal().sealed == 2
    seals = list(AuditSeal.objects.order_by("seq"))
    assert [s.seq for s in seals] == [first.pk, second.pk]
    assert seals[1].row_hash == chain.compute_row_hash(seals[0].row_hash, AuditLog.objects.get(pk=second.pk))
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
    """The application role has no TRUNCATE privilege; the superuser meets the trigger."""
    audit.record("system:test", "thing.done", ("thing", 1), {})
    with connect_as(connection.settings_dict["USER"]) as raw:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("TRUNCATE audit_auditlog")
    with superuser() as raw:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            raw.execute("TRUNCATE audit_auditlog")
    assert AuditLog.objects.count() >= 1


def test_orm_update_and_delete_are_refused():
    row = audit.record("system:test", "thing.done", ("thing", 1), {})
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).update(action="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        row.delete()


def test_alerts_endpoint_filters_by_type(support_api, sender_api):
    audit.alert_raise(type="payout_gave_up", message="Payout 4 gave up")
    audit.alert_raise(type="transfer_refused", message="Receiver not allow-listed")
    body = support_api.get("/api/v1/alerts?type=payout_gave_up").json()
    assert [a["type"] for a in body["results"]] == ["payout_gave_up"]
    assert set(body) == {"results", "next", "previous"}
    assert_error(sender_api.get("/api/v1/alerts"), 403, "permission_denied")
