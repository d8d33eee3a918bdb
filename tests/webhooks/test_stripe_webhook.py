"""POST /api/v1/psp/stripe/webhook: Stripe events, signed as Stripe signs them
(``stripe.WebhookSignature._compute_signature``), on PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.test import Client
from prometheus_client import REGISTRY

from escrow.models import EscrowDeposit, EscrowStatus
from escrow.services import escrow_client_approve
from payments.models import LedgerEntry, Payment, PaymentStatus
from payments.psp import sandbox
from tests.conftest import assert_error
from tests.factories import actor_for, fund, make_escrow
from webhooks.models import InboundEvent

URL = "/api/v1/psp/stripe/webhook"
SECRET = "whsec_stripe_test_secret_0123456789"
NOW = 1_760_000_000


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    sandbox.reset()
    yield
    sandbox.reset()


def stripe_header(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode()}", secret)
    return f"t={timestamp},v1={signature}"


def stripe_event(event_type: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": "2025-01-27",
            "type": event_type, "livemode": False, "data": {"object": obj}}


def deliver(event, *, header: str | None = None, **sign_kwargs):
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    header = stripe_header(body, **sign_kwargs) if header is None else header
    headers = {"Stripe-Signature": header} if header else {}
    response = Client().post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code < 500, (response.status_code, response.content[:500])
    return response


def payment_intent(escrow, *, amount: int, currency: str = "usd", pi: str | None = None) -> dict:
    return {"id": pi or f"pi_{uuid.uuid4().hex[:24]}", "object": "payment_intent", "amount": amount,
            "amount_received": amount, "currency": currency, "status": "succeeded",
            "metadata": {"escrow_id": str(escrow.pk)}}


def metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("kobatela_webhooks_total", {"provider": "stripe", "outcome": outcome}) or 0.0


# --- signature -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_payment_intent_succeeded_funds_the_escrow():
    escrow = make_escrow(amounts=("100.50",))
    intent = payment_intent(escrow, amount=10050, pi="pi_funding_1")
    event = stripe_event("payment_intent.succeeded", intent)
    response = deliver(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "processed"}
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_funded) == (EscrowStatus.FUNDED, Decimal("100.50"))
    deposit = EscrowDeposit.objects.get(escrow=escrow)
    assert (deposit.source, deposit.psp_ref, deposit.idempotency_key) == ("psp", "pi_funding_1", "psp:pi_funding_1")
    stored = InboundEvent.objects.get()
    assert (stored.provider, stored.event_id, stored.event_type, stored.status) == (
        "stripe", event["id"], "payment_intent.succeeded", InboundEvent.Status.PROCESSED)
    assert "stripe-signature" not in {name.lower() for name in stored.headers}

    # Stripe redelivers the same event: nothing changes.
    ledger = LedgerEntry.objects.count()
    assert deliver(event).json() == {"duplicate": True}
    assert LedgerEntry.objects.count() == ledger


@pytest.mark.django_db
def test_zero_decimal_currency_is_read_in_major_units():
    escrow = make_escrow(amounts=("1500.00",), currency="XOF")
    assert deliver(stripe_event("payment_intent.succeeded", payment_intent(escrow, amount=1500, currency="xof"))
                   ).json()["status"] == "processed"
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_funded) == (EscrowStatus.FUNDED, Decimal("1500.00"))


@pytest.mark.django_db
@pytest.mark.parametrize("secret", ["whsec_someone_else", SECRET + "x"])
def test_invalid_signature_is_refused(secret):
    escrow = make_escrow()
    before = metric("rejected")
    response = deliver(stripe_event("payment_intent.succeeded", payment_intent(escrow, amount=10000)), secret=secret)
    assert_error(response, 401, "webhook_signature_invalid")
    assert not InboundEvent.objects.exists()
    assert metric("rejected") == before + 1


@pytest.mark.django_db
def test_tampered_body_is_refused():
    escrow = make_escrow()
    body = json.dumps(stripe_event("payment_intent.succeeded", payment_intent(escrow, amount=100))).encode()
    header = stripe_header(body)
    assert_error(deliver(body.replace(b'"amount": 100,', b'"amount": 10000,'), header=header),
                 401, "webhook_signature_invalid")


@pytest.mark.django_db
@pytest.mark.parametrize(("age", "status"), [(301, 400), (-301, 400), (299, 200), (-299, 200)])
def test_timestamp_tolerance_is_300_seconds(age, status):
    escrow = make_escrow()
    with time_machine.travel(NOW, tick=False):
        response = deliver(stripe_event("payment_intent.succeeded", payment_intent(escrow, amount=10000)),
                           timestamp=NOW - age)
    if status == 400:
        assert_error(response, 400, "webhook_timestamp_invalid")
        assert not InboundEvent.objects.exists()
    else:
        assert response.json() == {"received": True, "status": "processed"}


@pytest.mark.django_db
def test_missing_header_and_missing_secret(monkeypatch):
    event = stripe_event("charge.succeeded", {"id": "ch_1"})
    assert_error(deliver(event, header=""), 400, "webhook_headers_missing")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    response = Client().post(URL, data=json.dumps(event), content_type="application/json",
                             headers={"Stripe-Signature": stripe_header(json.dumps(event).encode())})
    assert_error(response, 503, "webhook_secret_missing")
    assert not InboundEvent.objects.exists()


# --- types -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_other_stripe_types_are_stored_as_ignored():
    """Unlike the generic PSP (400 unknown_event_type), Stripe would retry a 4xx for days."""
    before = metric("accepted")
    event = stripe_event("customer.created", {"id": "cus_1", "object": "customer", "balance": 0.5})
    response = deliver(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "ignored"}
    stored = InboundEvent.objects.get()
    assert (stored.event_type, stored.status, stored.result) == ("customer.created", "PROCESSED", {"ignored": True})
    assert stored.body["data"]["object"]["balance"] == "0.5"
    assert metric("accepted") == before + 1
    assert deliver(event).json() == {"duplicate": True}


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    b"{nope", json.dumps({"type": "payment_intent.succeeded"}).encode(),
    json.dumps({"id": "evt_1", "data": {}}).encode(), json.dumps([1]).encode(),
    json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": "pi_1"}}).encode(),
])
def test_malformed_or_invalid_events_are_refused(body):
    response = deliver(body)
    assert response.status_code == 400
    assert_error(response, 400)["code"] in {"malformed_json", "invalid_event"}
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("change", [
    {"metadata": {}}, {"metadata": {"escrow_id": "abc"}}, {"amount_received": "100"}, {"amount_received": 1.5},
    {"currency": "zzz"}, {"currency": "dollars"}, {"id": None},
])
def test_payment_intent_with_bad_fields_is_refused(change):
    escrow = make_escrow()
    intent = {**payment_intent(escrow, amount=10000), **change}
    assert_error(deliver(stripe_event("payment_intent.succeeded", intent)), 400, "invalid_event_data")
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_transfer_and_payout_events_drive_the_payment():
    escrow = fund(make_escrow(amounts=("100.00",)))
    escrow_client_approve(actor=actor_for(escrow.client), escrow_id=escrow.pk)  # payout task not run: PENDING
    payment = Payment.objects.get(escrow=escrow)
    meta = {"payment_id": str(payment.pk), "escrow_id": str(escrow.pk)}

    sent = deliver(stripe_event("transfer.created", {"id": "tr_1", "object": "transfer", "amount": 10000,
                                                     "currency": "usd", "metadata": meta}))
    assert sent.json() == {"received": True, "status": "processed"}
    payment.refresh_from_db()
    assert (payment.status, payment.psp_ref) == (PaymentStatus.SENT, "tr_1")

    mismatch = deliver(stripe_event("payout.paid", {"id": "po_1", "object": "payout", "amount": 9999,
                                                    "currency": "usd", "metadata": meta}))
    assert mismatch.json() == {"received": True, "status": "failed", "error": "payment_amount_mismatch"}

    paid = deliver(stripe_event("payout.paid", {"id": "po_2", "object": "payout", "amount": 10000,
                                                "currency": "usd", "metadata": meta}))
    assert paid.json() == {"received": True, "status": "processed"}
    payment.refresh_from_db()
    escrow.refresh_from_db()
    # The payment keeps the Transfer's id (what reconciliation reads), not the Payout's.
    assert (payment.status, payment.psp_ref) == (PaymentStatus.SETTLED, "tr_1")
    assert escrow.status == EscrowStatus.RELEASED

    partial = deliver(stripe_event("transfer.reversed", {"id": "tr_1", "object": "transfer", "amount": 10000,
                                                         "amount_reversed": 5000, "currency": "usd",
                                                         "metadata": meta}))
    assert partial.json() == {"received": True, "status": "failed", "error": "payment_amount_mismatch"}
    full = deliver(stripe_event("transfer.reversed", {"id": "tr_1", "object": "transfer", "amount": 10000,
                                                      "amount_reversed": 10000, "currency": "usd", "metadata": meta}))
    assert full.json() == {"received": True, "status": "processed"}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED


@pytest.mark.django_db
def test_payout_failed_records_the_reason(django_capture_on_commit_callbacks):
    escrow = fund(make_escrow(amounts=("100.00",)))
    with django_capture_on_commit_callbacks(execute=True):
        escrow_client_approve(actor=actor_for(escrow.client), escrow_id=escrow.pk)
    payment = Payment.objects.get(escrow=escrow)
    assert payment.status == PaymentStatus.SENT
    response = deliver(stripe_event("payout.failed", {
        "id": "po_3", "object": "payout", "amount": 10000, "currency": "usd", "failure_code": "account_closed",
        "failure_message": "The bank account has been closed.", "metadata": {"payment_id": str(payment.pk)}}))
    assert response.json() == {"received": True, "status": "processed"}
    payment.refresh_from_db()
    assert (payment.status, payment.last_error) == (PaymentStatus.ERROR, "The bank account has been closed.")
