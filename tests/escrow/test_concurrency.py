"""Deposits under real concurrency: threads against PostgreSQL."""

from decimal import Decimal

import pytest

from escrow.models import EscrowDeposit
from payments.ledger import balance, escrow_account
from payments.reconcile import reconcile
from tests.conftest import _keyed_client
from tests.factories import make_escrow
from tests.support.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)



def test_25_concurrent_deposits_of_a_twentieth_fund_exactly():
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("1000.00",))
    url = f"/api/v1/escrows/{escrow.pk}/deposit"
    responses = run_concurrently(25, sender.plaintext, lambda c, i: c.post(url, {"amount": "50.00"}, format="json",
                                                                             HTTP_IDEMPOTENCY_KEY=f"dep-{i}"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 20 and statuses.count(409) == 5, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} <= {"escrow_is_funded", "deposit_exceeds_remaining"}
    escrow.refresh_from_db()
    assert escrow.amount_funded == Decimal("1000.00") and escrow.status == "FUNDED"
    assert balance(escrow_account(escrow.pk)) == Decimal("1000.00")
    assert reconcile() == []


def test_20_concurrent_deposits_with_one_key_deposit_once():
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("1000.00",))
    url = f"/api/v1/escrows/{escrow.pk}/deposit"
    responses = run_concurrently(20, sender.plaintext, lambda c, i: c.post(url, {"amount": "10.00"}, format="json",
                                                                             HTTP_IDEMPOTENCY_KEY="same-key"))
    assert {r.status_code for r in responses} <= {200, 409}
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1
    escrow.refresh_from_db()
    assert escrow.amount_funded == Decimal("10.00")
    assert reconcile() == []


def test_12_concurrent_service_calls_with_one_key_count_once_and_all_answer():
    """Below the HTTP idempotency layer (a PSP webhook retried in parallel): the
    deposit key's unique constraint decides; the losers roll back and answer
    the escrow, never an error."""
    from escrow.services import escrow_deposit
    from tests.factories import actor_for

    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("1000.00",))

    def deposit(_client, _i):
        try:
            return escrow_deposit(actor=actor_for(sender.user), escrow_id=escrow.pk, amount=Decimal("10.00"),
                                  idempotency_key="svc-key", account_id=sender.user.pk).amount_funded
        except Exception as exc:  # returned, so the assertion shows it
            return exc

    results = run_concurrently(12, sender.plaintext, deposit)

    assert results == [Decimal("10.00")] * 12
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1
    assert balance(escrow_account(escrow.pk)) == Decimal("10.00")
