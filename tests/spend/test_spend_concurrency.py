"""Mandates and payee spends under real concurrency: threads against PostgreSQL."""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from payments.ledger import balance, mandate_account
from payments.models import Payment
from payments.psp import sandbox
from payments.reconcile import reconcile
from spend import services
from spend.models import AllowedPayee, Purchase, UsageMandate
from tests.conftest import _keyed_client
from tests.factories import UserFactory, fund, make_escrow
from tests.spend.builders import allow_payee, make_mandate, make_merchant, purchase_body
from tests.support.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)



def _codes(responses):
    return Counter(r.json()["error"]["code"] if r.status_code >= 400 else r.status_code for r in responses)


def test_30_concurrent_purchases_of_a_tenth_consume_the_mandate_exactly():
    sender = _keyed_client(["sender"])
    merchant = make_merchant(certified=True)
    mandate = make_mandate(sender=sender.user, total="100.00")
    responses = run_concurrently(30, sender.plaintext, lambda c, i: c.post(
        "/api/v1/spend/purchases", purchase_body(mandate, merchant, "10.00"), format="json",
        HTTP_IDEMPOTENCY_KEY=f"buy-{i}"))
    codes = _codes(responses)
    assert codes[201] == 10 and sum(codes.values()) == 30, codes
    assert set(codes) <= {201, "insufficient_budget", "mandate_is_consumed"}, codes
    mandate.refresh_from_db()
    assert mandate.remaining_amount == Decimal("0.00") and mandate.status == "CONSUMED"
    assert Purchase.objects.filter(mandate=mandate).count() == 10
    assert balance(mandate_account(mandate.pk)) == Decimal("0.00")
    assert reconcile() == []


def test_20_concurrent_purchases_with_one_key_buy_once():
    sender = _keyed_client(["sender"])
    merchant = make_merchant(certified=True)
    mandate = make_mandate(sender=sender.user, total="100.00")
    responses = run_concurrently(20, sender.plaintext, lambda c, i: c.post(
        "/api/v1/spend/purchases", purchase_body(mandate, merchant, "10.00"), format="json",
        HTTP_IDEMPOTENCY_KEY="same-key"))
    assert {r.status_code for r in responses} <= {201, 409}
    assert Purchase.objects.filter(mandate=mandate).count() == 1
    mandate.refresh_from_db()
    assert mandate.remaining_amount == Decimal("90.00")
    assert reconcile() == []


def test_concurrent_creates_leave_one_active_mandate_per_triple():
    sender = _keyed_client(["sender"])
    beneficiary = UserFactory()
    body = {"beneficiary_id": beneficiary.pk, "total_amount": "50.00", "currency": "USD",
            "expires_at": (timezone.now() + timedelta(days=1)).isoformat()}
    responses = run_concurrently(15, sender.plaintext, lambda c, i: c.post("/api/v1/mandates", body, format="json"))
    codes = _codes(responses)
    assert codes == Counter({201: 1, "mandate_already_active": 14}), codes
    assert UsageMandate.objects.filter(beneficiary=beneficiary, status="ACTIVE").count() == 1
    assert reconcile() == []


def _spend(escrow, amount):
    return lambda c, i: c.post("/api/v1/spend", {"escrow_id": escrow.pk, "payee_ref": "acct_payee_1", "amount": amount},
                               format="json", HTTP_IDEMPOTENCY_KEY=f"spend-{i}")


def test_30_concurrent_spends_stop_at_the_payee_total_limit():
    sandbox.reset()
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("1000.00",)))
    allow_payee(escrow, total_limit="100.00")
    responses = run_concurrently(30, sender.plaintext, _spend(escrow, "10.00"))
    codes = _codes(responses)
    assert codes == Counter({200: 10, "total_limit_exceeded": 20}), codes
    payee = AllowedPayee.objects.get(escrow=escrow)
    assert payee.spent_total == Decimal("100.00") and payee.spent_today == Decimal("100.00")
    payments = Payment.objects.filter(escrow=escrow)
    assert payments.count() == 10 and {p.status for p in payments} == {"SENT"}
    # The answer is what committed with the spend (its Idempotency-Key's stored
    # response commits in the same transaction); the payout leaves after commit.
    assert {r.json()["status"] for r in responses if r.status_code == 200} == {"PENDING"}
    assert len(sandbox.recorded_payouts()) == 10
    assert reconcile() == []


def test_30_concurrent_spends_stop_at_the_escrow_balance():
    sandbox.reset()
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    allow_payee(escrow)
    responses = run_concurrently(30, sender.plaintext, _spend(escrow, "10.00"))
    codes = _codes(responses)
    assert codes == Counter({200: 10, "insufficient_escrow_funds": 20}), codes
    assert sum(p.amount for p in Payment.objects.filter(escrow=escrow)) == Decimal("100.00")
    assert reconcile() == []


def test_a_purchase_racing_the_expiry_job_never_succeeds_after_expiry(settings):
    """Buyers hammer a mandate across its expiry instant while another thread
    runs the expiry service from that instant on. Whatever the interleaving,
    every accepted purchase was checked (and dated) before ``expires_at``, and
    the mandate ends EXPIRED with the books balanced."""
    # Six threads on one key can pass its 100 requests a second; this race is about the
    # expiry, not the per-key limit (tested in tests/core/test_ratelimit.py).
    settings.RATE_LIMIT_BURST_PER_SECOND = 100_000
    settings.RATE_LIMIT_PER_MINUTE = 1_000_000
    sender = _keyed_client(["sender"])
    merchant = make_merchant(certified=True)
    mandate = make_mandate(sender=sender.user, total="100000.00", expires_in=timedelta(seconds=1.5))
    expires_at: datetime = mandate.expires_at
    give_up = time.monotonic() + 30
    buyers = 6
    refusals_per_buyer = 3  # keep buying past the instant, until the job's EXPIRED is seen too
    barrier = threading.Barrier(buyers + 1)

    def buyer(i):
        seen = []
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {sender.plaintext}")
            barrier.wait()
            n = refusals = 0
            while refusals < refusals_per_buyer and time.monotonic() < give_up:
                n += 1
                response = client.post("/api/v1/spend/purchases", purchase_body(mandate, merchant, "1.00"),
                                       format="json", HTTP_IDEMPOTENCY_KEY=f"race-{i}-{n}")
                seen.append(response)
                refusals += response.status_code != 201
            return seen
        finally:
            connection.close()

    def expirer(_):
        try:
            barrier.wait()
            while timezone.now() < expires_at:
                time.sleep(0.001)
            expired = 0
            while not expired and time.monotonic() < give_up:
                expired = services.mandates_expire_due(actor="system:test")
            return expired
        finally:
            connection.close()

    with ThreadPoolExecutor(buyers + 1) as pool:
        expiry = pool.submit(expirer, None)
        per_buyer = list(pool.map(buyer, range(buyers)))
        assert expiry.result() == 1
    seen = [r for rs in per_buyer for r in rs]

    codes = _codes(seen)
    assert set(codes) <= {201, "mandate_expired", "mandate_is_expired"}, codes
    assert codes[201] > 0 and codes[201] + codes["mandate_expired"] + codes["mandate_is_expired"] == len(seen)
    assert sum(1 for r in seen if r.status_code != 201) == buyers * refusals_per_buyer
    for responses in per_buyer:  # once refused, never accepted again
        statuses = [r.status_code for r in responses]
        first_refusal = next(i for i, code in enumerate(statuses) if code != 201)
        assert set(statuses[first_refusal:]) == {409}
    mandate.refresh_from_db()
    assert mandate.status == "EXPIRED"
    purchases = Purchase.objects.filter(mandate=mandate)
    assert purchases.count() == codes[201]
    assert not purchases.filter(created_at__gte=expires_at).exists()
    assert all(datetime.fromisoformat(r.json()["created_at"]) < expires_at for r in seen if r.status_code == 201)
    assert mandate.remaining_amount == Decimal("100000.00") - codes[201]
    assert balance(mandate_account(mandate.pk)) == 0
    assert reconcile() == []
