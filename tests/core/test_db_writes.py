"""``kobatela.core.db``: what insert and update write is what the ORM would have written,
and no signal listens to a model it writes."""

from decimal import Decimal

import psycopg
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from escrow.models import EscrowAgreement, EscrowDeposit, EscrowEvent, Milestone
from kobatela.audit.models import AuditLog
from kobatela.core import db
from kobatela.core.models import IdempotencyKey
from payments.models import LedgerEntry
from tests.factories import make_escrow
from tests.support.database import advisory_locks_held

pytestmark = pytest.mark.django_db


def test_rows_come_back_with_their_pks_in_order_and_read_back_equal():
    lines = db.insert([
        LedgerEntry(movement="t:1", kind="deposit", account="a", amount=Decimal("-12.34"), currency="EUR"),
        LedgerEntry(movement="t:1", kind="deposit", account="b", amount=Decimal("12.34"), currency="EUR"),
    ])

    assert [line.account for line in lines] == ["a", "b"]
    assert lines[0].pk < lines[1].pk and not lines[0]._state.adding
    stored = {row.pk: row for row in LedgerEntry.objects.filter(movement="t:1")}
    assert stored[lines[0].pk].amount == Decimal("-12.34") and stored[lines[1].pk].account == "b"
    assert stored[lines[0].pk].created_at == lines[0].created_at  # auto_now_add filled, as the ORM does


def test_json_and_foreign_keys_are_prepared_as_the_orm_prepares_them():
    escrow = make_escrow()
    data = {"amount": "1.00", "nested": {"list": [1, "two", None]}, "unicode": "café"}

    [event] = db.insert([EscrowEvent(escrow=escrow, kind="note", actor="system:test", data=data)])

    assert EscrowEvent.objects.get(pk=event.pk).data == data
    assert EscrowEvent.objects.get(pk=event.pk).escrow_id == escrow.pk


def test_ignore_conflict_on_answers_empty_and_keeps_the_first_row(admin_api):
    api_key_id = admin_api.api_key.pk
    first = IdempotencyKey(api_key_id=api_key_id, key="k", fingerprint="a" * 64)
    assert db.insert([first], ignore_conflict_on=("api_key", "key")) == [first]

    second = IdempotencyKey(api_key_id=api_key_id, key="k", fingerprint="b" * 64)
    assert db.insert([second], ignore_conflict_on=("api_key", "key")) == []

    assert second.pk is None
    assert list(IdempotencyKey.objects.filter(key="k").values_list("fingerprint", flat=True)) == ["a" * 64]


@pytest.mark.no_reconcile  # a bare deposit row, without its ledger lines, on purpose
def test_any_other_violation_raises_and_writes_nothing():
    escrow = make_escrow()
    row = dict(escrow=escrow, account_id=escrow.client_id, amount=Decimal("1.00"), idempotency_key="same")
    db.insert([EscrowDeposit(**row)])

    with pytest.raises(IntegrityError), transaction.atomic():
        db.insert([EscrowDeposit(**row)])
    with pytest.raises(IntegrityError), transaction.atomic():  # the positive-amount check
        db.insert([EscrowDeposit(**{**row, "idempotency_key": "other", "amount": Decimal("-1.00")})])

    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1


def test_misuse_is_refused():
    assert db.insert([]) == []
    with pytest.raises(TypeError):
        db.insert([LedgerEntry(movement="m", kind="deposit", account="a", amount=Decimal("1"), currency="USD"),
                   EscrowEvent(kind="x")])
    with pytest.raises(ValueError):
        db.insert([IdempotencyKey(key="a"), IdempotencyKey(key="b")], ignore_conflict_on=("api_key", "key"))


# Every model kobatela.core.db writes: inserts of the append-only rows, updates
# of the escrow's totals and the idempotency response.
WRITTEN_THROUGH_DB = [LedgerEntry, AuditLog, EscrowEvent, EscrowDeposit, IdempotencyKey, EscrowAgreement]


@pytest.mark.parametrize("model", WRITTEN_THROUGH_DB)
def test_no_save_signal_listens_to_the_rows_db_writes(model):
    """insert() and update() send no signals, like bulk_create: a receiver added later would silently miss rows."""
    assert not pre_save.has_listeners(model) and not post_save.has_listeners(model)


@pytest.mark.no_reconcile  # amount_funded moved without a deposit, on purpose
def test_update_writes_only_the_named_fields_and_fills_auto_now():
    escrow = make_escrow(amounts=("100.00",))
    before = escrow.updated_at
    escrow.amount_funded = Decimal("12.50")
    escrow.currency = "XXX"  # changed in memory, not named: must not be written

    db.update(escrow, ["amount_funded", "updated_at"])

    stored = type(escrow).objects.get(pk=escrow.pk)
    assert stored.amount_funded == Decimal("12.50") and stored.currency == "USD"
    assert stored.updated_at == escrow.updated_at > before


def test_insert_and_lock_takes_the_lock_only_for_the_row_it_inserts_and_update_and_unlock_releases_it(admin_api):
    api_key_id = admin_api.api_key.pk
    first = IdempotencyKey(api_key_id=api_key_id, key="locked", fingerprint="a" * 64)
    assert db.insert_and_lock(first, ignore_conflict_on=("api_key", "key"), lock=4242) is True
    assert first.pk is not None and advisory_locks_held() == {4242}

    again = IdempotencyKey(api_key_id=api_key_id, key="locked", fingerprint="b" * 64)
    assert db.insert_and_lock(again, ignore_conflict_on=("api_key", "key"), lock=4343) is None
    assert again.pk is None and advisory_locks_held() == {4242}  # no row, no lock

    first.status = IdempotencyKey.Status.COMPLETED
    db.update_and_unlock(first, ["status"], lock=4242)
    assert advisory_locks_held() == set()
    assert IdempotencyKey.objects.get(pk=first.pk).status == IdempotencyKey.Status.COMPLETED

    with connection.cursor() as cursor:  # a missing row releases nothing
        cursor.execute("SELECT pg_advisory_lock(4242)")
    first.pk += 1000
    with pytest.raises(DatabaseError):
        db.update_and_unlock(first, ["status"], lock=4242)
    assert advisory_locks_held() == {4242}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(4242)")


def test_update_prepares_json_with_the_fields_encoder_and_refuses_a_missing_row(admin_api):
    body = {"amount": "1.50", "at": timezone.now(), "nested": [None, True, "café"]}
    [record, through_orm] = db.insert([IdempotencyKey(api_key_id=admin_api.api_key.pk, key=k, fingerprint="f" * 64)
                                       for k in ("u", "v")])
    record.response_body = body
    db.update(record, ["response_body"])
    IdempotencyKey.objects.filter(pk=through_orm.pk).update(response_body=body)

    stored = dict(IdempotencyKey.objects.values_list("key", "response_body"))
    assert stored["u"] == stored["v"] and stored["u"]["at"] == body["at"].isoformat().replace("+00:00", "Z")

    record.pk = record.pk + 1000
    with pytest.raises(DatabaseError):
        db.update(record, ["response_body"])


def test_select_reads_what_the_orm_reads_converted_and_in_order():
    escrow = make_escrow(amounts=("10.00", "20.00", "70.00"))
    escrow.release_conditions = {"note": "café", "n": [1, 2]}
    escrow.save(update_fields=["release_conditions"])
    expected = EscrowAgreement.objects.get(pk=escrow.pk)

    [row] = db.select(EscrowAgreement, {"id": escrow.pk})

    for field in EscrowAgreement._meta.concrete_fields:  # decimals, JSON, aware datetimes, FKs
        assert getattr(row, field.attname) == getattr(expected, field.attname), field.name
    assert not row._state.adding
    milestones = db.select(Milestone, {"escrow_id": escrow.pk}, order_by=("idx",))
    assert [m.pk for m in milestones] == list(expected.milestones.order_by("idx").values_list("pk", flat=True))


def test_select_any_of_matches_one_party_or_none():
    escrow = make_escrow()
    stranger = escrow.client_id + escrow.provider_id + 1000

    assert db.select(EscrowAgreement, {"id": escrow.pk}, any_of={"client_id": escrow.client_id}) != []
    assert db.select(EscrowAgreement, {"id": escrow.pk},
                     any_of={"client_id": stranger, "provider_id": escrow.provider_id}) != []
    assert db.select(EscrowAgreement, {"id": escrow.pk}, any_of={"client_id": stranger, "provider_id": stranger}) == []
    with pytest.raises(ValueError):
        db.select(EscrowAgreement, {"id": escrow.pk}, any_of={})  # "no party" must not mean "anyone"
    with pytest.raises(ValueError):
        db.select(EscrowAgreement, {})


@pytest.mark.django_db(transaction=True)
def test_select_for_update_holds_the_row_lock_until_the_transaction_ends():
    escrow = make_escrow()
    params = connection.settings_dict
    other = psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"],
                            host=params["HOST"], port=params["PORT"], autocommit=True)
    try:
        probe = "SELECT id FROM escrow_escrowagreement WHERE id = %s FOR UPDATE NOWAIT"
        with transaction.atomic():
            [locked] = db.select(EscrowAgreement, {"id": escrow.pk}, for_update=True)
            assert locked.pk == escrow.pk
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(probe, [escrow.pk])
        assert other.execute(probe, [escrow.pk]).fetchone() == (escrow.pk,)  # released at the commit
    finally:
        other.close()
