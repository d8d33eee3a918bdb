"""The deposit service's own idempotency: the (account, key) constraint decides."""

from decimal import Decimal

import pytest

from escrow.models import EscrowDeposit, EscrowEvent
from escrow.services import escrow_deposit
from kobatela.audit.models import AuditLog
from kobatela.core.errors import Conflict
from payments.models import LedgerEntry
from tests.factories import actor_for, make_escrow

pytestmark = pytest.mark.django_db


def _deposit(escrow, amount, key):
    return escrow_deposit(actor=actor_for(escrow.client), escrow_id=escrow.pk, amount=Decimal(amount),
                          idempotency_key=key, account_id=escrow.client_id)


def _rows():
    return (EscrowDeposit.objects.count(), LedgerEntry.objects.count(), EscrowEvent.objects.count(),
            AuditLog.objects.count())


def test_a_retried_key_counts_once_and_answers_the_escrow_as_it_is():
    escrow = make_escrow(amounts=("100.00",))
    _deposit(escrow, "30.00", "k1")
    before = _rows()

    again = _deposit(escrow, "30.00", "k1")

    assert again.pk == escrow.pk and again.amount_funded == Decimal("30.00") and again.status == "DRAFT"
    assert _rows() == before


def test_a_retry_after_the_escrow_is_funded_is_answered_not_refused():
    escrow = make_escrow(amounts=("100.00",))
    _deposit(escrow, "100.00", "all")
    before = _rows()

    again = _deposit(escrow, "100.00", "all")

    assert again.status == "FUNDED" and again.amount_funded == Decimal("100.00")
    assert _rows() == before
    with pytest.raises(Conflict) as refused:  # a new key is refused as before
        _deposit(escrow, "1.00", "new")
    assert refused.value.code == "escrow_is_funded"


def test_a_key_reused_on_another_escrow_of_the_account_is_409_and_changes_nothing():
    first = make_escrow(amounts=("100.00",))
    second = make_escrow(client=first.client, amounts=("100.00",))
    _deposit(first, "10.00", "shared")
    before = _rows()

    with pytest.raises(Conflict) as refused:
        _deposit(second, "10.00", "shared")

    assert refused.value.code == "deposit_key_reused"
    second.refresh_from_db()
    assert second.amount_funded == Decimal("0.00") and _rows() == before


def test_the_same_key_from_another_account_is_another_deposit():
    first = make_escrow(amounts=("100.00",))
    other = make_escrow(amounts=("100.00",))
    _deposit(first, "10.00", "k")
    assert _deposit(other, "10.00", "k").amount_funded == Decimal("10.00")


def test_a_key_reused_on_another_escrow_that_refuses_deposits_is_still_key_reused():
    first = make_escrow(amounts=("100.00",))
    funded = make_escrow(client=first.client, amounts=("10.00",))
    _deposit(funded, "10.00", "funds-it")
    _deposit(first, "10.00", "shared")

    with pytest.raises(Conflict) as refused:
        _deposit(funded, "10.00", "shared")

    assert refused.value.code == "deposit_key_reused"
