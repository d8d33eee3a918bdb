"""Deposits under real concurrency: threads against PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from escrow.models import EscrowDeposit
from payments.ledger import balance, escrow_account
from payments.reconcile import reconcile
from tests.conftest import _keyed_client
from tests.factories import make_escrow

pytestmark = pytest.mark.django_db(transaction=True)


def _run_concurrently(n, plaintext, make_request):
    barrier = threading.Barrier(n)

    def one(i):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
            barrier.wait()
            return make_request(client, i)
        finally:
            connection.close()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_25_concurrent_deposits_of_a_twentieth_fund_exactly():
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("1000.00",))
    url = f"/api/v1/escrows/{escrow.pk}/deposit"
    responses = _run_concurrently(25, sender.plaintext, lambda c, i: c.post(url, {"amount": "50.00"}, format="json",
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
    responses = _run_concurrently(20, sender.plaintext, lambda c, i: c.post(url, {"amount": "10.00"}, format="json",
                                                                             HTTP_IDEMPOTENCY_KEY="same-key"))
    assert {r.status_code for r in responses} <= {200, 409}
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1
    escrow.refresh_from_db()
    assert escrow.amount_funded == Decimal("10.00")
    assert reconcile() == []
