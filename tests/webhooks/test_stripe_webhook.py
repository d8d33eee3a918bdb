"""POST /api/v1/psp/stripe/webhook: Stripe events, signed as Stripe signs them
(``stripe.WebhookSignature._compute_signature``), on PostgreSQL.

Funding PaymentIntents are opened through the real funding-session service
and the real Stripe adapter, talking to the local fake Stripe
(``tests/support/fake_stripe.py``): a PaymentIntent funds an escrow only when
it is a funding session Kobatela opened for that escrow.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from prometheus_client import REGISTRY

from escrow.models import EscrowAgreement, EscrowDeposit, EscrowStatus
from escrow.services import escrow_client_approve, escrow_funding_session
from kobatela.audit.models import Alert
from payments.models import LedgerEntry, Payment, PaymentStatus
from payments.psp import sandbox
from tests.conftest import assert_error
from tests.factories import actor_for, fund, make_escrow
from tests.support.fake_stripe import FakeStripe
from webhooks.models import InboundEvent

URL = "/api/v1/psp/stripe/webhook"
SECRET = "whsec_stripe_test_secret_0123456789"
NOW = 1_760_000_000
UNUSABLE_ALERT = "webhook_event_unusable"


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


def stripe_event(event_type: str, obj, *, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": "2025-01-27",
            "type": event_type, "livemode": False, "data": {"object": obj}}


def deliver(event, *, header: str | None = None, **sign_kwargs):
    """POST an event, signed now (a replay is the same body signed again, as Stripe resends it). Never a 5xx."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    header = stripe_header(body, **sign_kwargs) if header is None else header
    headers = {"Stripe-Signature": header} if header else {}
    response = Client().post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code < 500, (response.status_code, response.content[:500])
    return response


def payment_intent(escrow, *, amount: int = 10000, currency: str = "usd", pi: str | None = None) -> dict:
    """A succeeded PaymentIntent naming the escrow, that Kobatela did not open (no funding session)."""
    return {"id": pi or f"pi_{uuid.uuid4().hex[:24]}", "object": "payment_intent", "amount": amount,
            "amount_received": amount, "currency": currency, "status": "succeeded",
            "metadata": {"escrow_id": str(escrow.pk)}}


def funding_intent(fake: FakeStripe, escrow) -> dict:
    """The PaymentIntent of a funding session opened for the escrow, as Stripe reports it once paid."""
    session = escrow_funding_session(actor=actor_for(escrow.client), escrow_id=escrow.pk)
    intent = fake.payment_intents[session.session_id]
    return {**intent, "status": "succeeded", "amount_received": intent["amount"]}


def transfer(payment_id, *, group: str | None = "ours", **extra) -> dict:
    """A Transfer as the Stripe adapter creates our payouts: ``transfer_group = "payment-<id>"``."""
    obj = {"id": f"tr_{uuid.uuid4().hex[:16]}", "object": "transfer", "amount": 10000, "currency": "usd",
           "metadata": {"payment_id": str(payment_id)}, **extra}
    if group is not None:
        obj["transfer_group"] = f"payment-{payment_id}" if group == "ours" else group
    return obj


def metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("kobatela_webhooks_total", {"provider": "stripe", "outcome": outcome}) or 0.0


def books() -> dict:
    """Everything money: ledger lines, deposits, escrows' amounts and statuses, payouts."""
    return {
        "ledger": list(LedgerEntry.objects.order_by("pk").values_list("pk", "account", "amount")),
        "deposits": list(EscrowDeposit.objects.order_by("pk").values_list("pk", "escrow_id", "amount")),
        "escrows": list(EscrowAgreement.objects.order_by("pk")
                        .values_list("pk", "status", "amount_funded", "amount_released")),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", "status", "psp_ref")),
    }


def unusable_alerts():
    return Alert.objects.filter(type=UNUSABLE_ALERT)


# --- signature -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_payment_intent_succeeded_funds_the_escrow(fake_stripe):
    escrow = make_escrow(amounts=("100.50",))
    intent = funding_intent(fake_stripe, escrow)
    assert (intent["amount"], intent["metadata"]) == (10050, {"escrow_id": str(escrow.pk)})
    event = stripe_event("payment_intent.succeeded", intent)
    processed = metric("processed")
    response = deliver(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "processed"}
    assert metric("processed") == processed + 1
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_funded) == (EscrowStatus.FUNDED, Decimal("100.50"))
    deposit = EscrowDeposit.objects.get(escrow=escrow)
    assert (deposit.source, deposit.psp_ref, deposit.idempotency_key) == (
        "psp", intent["id"], f"psp:{intent['id']}")
    stored = InboundEvent.objects.get()
    assert (stored.provider, stored.event_id, stored.event_type, stored.status) == (
        "stripe", event["id"], "payment_intent.succeeded", InboundEvent.Status.PROCESSED)
    assert "stripe-signature" not in {name.lower() for name in stored.headers}

    # Stripe redelivers the same event: nothing changes.
    ledger = LedgerEntry.objects.count()
    assert deliver(event).json() == {"duplicate": True}
    assert LedgerEntry.objects.count() == ledger


@pytest.mark.django_db
def test_zero_decimal_currency_is_read_in_major_units(fake_stripe):
    escrow = make_escrow(amounts=("1500.00",), currency="XOF")
    intent = funding_intent(fake_stripe, escrow)
    assert (intent["amount"], intent["currency"]) == (1500, "xof")
    assert deliver(stripe_event("payment_intent.succeeded", intent)).json()["status"] == "processed"
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
def test_timestamp_tolerance_is_300_seconds(fake_stripe, age, status):
    escrow = make_escrow()
    intent = funding_intent(fake_stripe, escrow)
    with time_machine.travel(NOW, tick=False):
        response = deliver(stripe_event("payment_intent.succeeded", intent), timestamp=NOW - age)
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


# --- what is refused: only what could not be stored ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "code"), [
    (b"{nope", "malformed_json"),
    (json.dumps([1]).encode(), "invalid_event"),
    (json.dumps("evt_1").encode(), "invalid_event"),
    (json.dumps({"type": "payment_intent.succeeded"}).encode(), "invalid_event"),  # no id
    (json.dumps({"id": 7, "type": "payment_intent.succeeded"}).encode(), "invalid_event"),
    (json.dumps({"id": "  ", "type": "payment_intent.succeeded"}).encode(), "invalid_event"),
    (json.dumps({"id": "e" * 256, "type": "payment_intent.succeeded"}).encode(), "invalid_event"),
    (json.dumps({"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"id": "a\u0000b"}}}).encode(),
     "invalid_event"),  # PostgreSQL's jsonb cannot hold NUL
])
def test_bodies_that_cannot_be_stored_are_refused(body, code):
    rejected, alerts = metric("rejected"), Alert.objects.count()
    assert_error(deliver(body), 400, code)
    assert not InboundEvent.objects.exists()
    assert metric("rejected") == rejected + 1
    assert Alert.objects.count() == alerts


# --- signed but not ours: 200, stored IGNORED, no alert --------------------------------------------


def _without(obj: dict, key: str) -> dict:
    return {k: v for k, v in obj.items() if k != key}


NOT_OURS = {
    "payment intent without metadata": (
        lambda e: stripe_event("payment_intent.succeeded", _without(payment_intent(e), "metadata")), "not_ours"),
    "payment intent with empty metadata": (
        lambda e: stripe_event("payment_intent.succeeded", {**payment_intent(e), "metadata": {}}), "not_ours"),
    "payment intent of another product": (
        lambda e: stripe_event("payment_intent.succeeded",
                               {**payment_intent(e), "metadata": {"order_id": "ord_42", "shop": "other"}}), "not_ours"),
    "metadata that is not an object": (
        lambda e: stripe_event("payment_intent.succeeded", {**payment_intent(e), "metadata": f"escrow_id={e.pk}"}),
        "not_ours"),
    "transfer of another product": (
        lambda e: stripe_event("transfer.created", {**transfer(1, group="order-7"), "metadata": {"order": "7"}}),
        "not_ours"),
    "payout without metadata": (
        lambda e: stripe_event("payout.paid", {"id": "po_1", "object": "payout", "amount": 100, "currency": "usd"}),
        "not_ours"),
    "unknown object type without metadata": (
        lambda e: stripe_event("payment_intent.succeeded", {"id": "ch_1", "object": "charge", "amount": 10000}),
        "not_ours"),
    "data.object that is not an object": (
        lambda e: stripe_event("payment_intent.succeeded", "pi_1"), "not_ours"),
    "no data at all": (
        lambda e: _without(stripe_event("payment_intent.succeeded", {}), "data"), "not_ours"),
    # Stripe copies a PaymentIntent's metadata onto its Charge: our keys on a type we do not act on are normal.
    "type we do not act on, with our metadata": (
        lambda e: stripe_event("charge.succeeded", {"id": "ch_2", "object": "charge",
                                                    "metadata": {"escrow_id": str(e.pk)}}),
        "event_type_not_handled"),
    "no type": (lambda e: _without(stripe_event("x", payment_intent(e)), "type"), "event_type_not_handled"),
    "type that is not a string": (
        lambda e: {**stripe_event("x", payment_intent(e)), "type": ["payment_intent.succeeded"]},
        "event_type_not_handled"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(NOT_OURS), ids=list(NOT_OURS))
def test_signed_events_that_are_not_ours_are_stored_ignored(case):
    build, reason = NOT_OURS[case]
    escrow = make_escrow()
    event = build(escrow)
    before, ignored, duplicate, alerts = books(), metric("ignored"), metric("duplicate"), Alert.objects.count()

    response = deliver(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "ignored"}
    stored = InboundEvent.objects.get()
    assert (stored.event_id, stored.status, stored.attempts) == (event["id"], InboundEvent.Status.IGNORED, 1)
    assert stored.error.startswith(f"{reason}: ")
    assert stored.result["ignored"] is True and stored.result["reason"]["code"] == reason
    assert stored.processed_at is not None
    assert metric("ignored") == ignored + 1

    # A replay (Stripe's dashboard "resend", or someone who kept the request) changes nothing.
    assert deliver(event).json() == {"duplicate": True}
    assert metric("duplicate") == duplicate + 1
    assert InboundEvent.objects.get().attempts == 1

    assert Alert.objects.count() == alerts  # not ours: nothing for an operator
    assert books() == before


@pytest.mark.django_db
def test_other_stripe_types_are_stored_ignored_with_their_exact_body():
    """Unlike the generic PSP (400 unknown_event_type), Stripe would retry a 4xx for days."""
    event = stripe_event("customer.created", {"id": "cus_1", "object": "customer", "balance": 0.5})
    response = deliver(event)
    assert response.json() == {"received": True, "status": "ignored"}
    stored = InboundEvent.objects.get()
    assert (stored.event_type, stored.status) == ("customer.created", InboundEvent.Status.IGNORED)
    assert stored.body["data"]["object"]["balance"] == "0.5"


@pytest.mark.django_db
def test_an_overlong_type_is_stored_cut_to_the_column():
    event = stripe_event("x" * 500, {"id": "a"})
    assert deliver(event).json() == {"received": True, "status": "ignored"}
    stored = InboundEvent.objects.get()
    assert stored.event_type == "x" * 100 and stored.body["type"] == "x" * 500


# --- signed, looks like ours, unusable: 200, stored FAILED with the reason, one alert ---------------


@dataclass
class World:
    fake: FakeStripe
    escrow: EscrowAgreement  # a DRAFT escrow, waiting for funds
    other: EscrowAgreement  # another tenant's DRAFT escrow
    payment: Payment  # a PENDING payout


@pytest.fixture
def world(fake_stripe) -> World:
    paying = fund(make_escrow(amounts=("100.00",)))
    escrow_client_approve(actor=actor_for(paying.client), escrow_id=paying.pk)  # payout task not run: PENDING
    payment = Payment.objects.get(escrow=paying)
    assert payment.status == PaymentStatus.PENDING
    return World(fake=fake_stripe, escrow=make_escrow(amounts=("100.00",)), other=make_escrow(amounts=("100.00",)),
                 payment=payment)


def _funding(w: World, **metadata) -> dict:
    return stripe_event("payment_intent.succeeded", {**payment_intent(w.escrow), "metadata": metadata})


def _bad_intent(w: World, **change) -> dict:
    return stripe_event("payment_intent.succeeded", {**payment_intent(w.escrow), **change})


HUGE = "9" * 25
UNKNOWN_ID = str(10**17)

LOOKS_OURS = {
    "escrow_id not an integer": (lambda w: _funding(w, escrow_id="abc"), "invalid_event_data"),
    "escrow_id a fraction": (lambda w: _funding(w, escrow_id="1.5"), "invalid_event_data"),
    "escrow_id huge": (lambda w: _funding(w, escrow_id=HUGE), "invalid_event_data"),
    "escrow_id zero": (lambda w: _funding(w, escrow_id="0"), "invalid_event_data"),
    "escrow_id empty": (lambda w: _funding(w, escrow_id=""), "invalid_event_data"),
    "escrow_id of no escrow": (lambda w: _funding(w, escrow_id=UNKNOWN_ID), "escrow_not_found"),
    # Another product on the shared Stripe account, or another tenant: the escrow exists, the
    # PaymentIntent is not a funding session Kobatela opened for it.
    "escrow_id of an escrow the intent was not opened for": (
        lambda w: _funding(w, escrow_id=str(w.other.pk)), "funding_session_not_found"),
    "our session of one escrow naming another tenant's escrow": (
        lambda w: stripe_event("payment_intent.succeeded",
                               {**funding_intent(w.fake, w.escrow), "metadata": {"escrow_id": str(w.other.pk)}}),
        "funding_session_not_found"),
    "payment_id on a payment intent": (
        lambda w: _funding(w, payment_id=str(w.payment.pk)), "invalid_event_data"),
    "unknown object type": (lambda w: _bad_intent(w, object="charge"), "unexpected_object"),
    "amount as a string": (lambda w: _bad_intent(w, amount_received="10000"), "invalid_event_data"),
    "amount as a fraction": (lambda w: _bad_intent(w, amount_received=1.5), "invalid_event_data"),
    "unknown currency": (lambda w: _bad_intent(w, currency="zzz"), "invalid_event_data"),
    "no intent id": (lambda w: _bad_intent(w, id=None), "invalid_event_data"),
    "payment_id of no payment": (
        lambda w: stripe_event("transfer.created", transfer(UNKNOWN_ID)), "payment_not_found"),
    "payment_id not an integer": (
        lambda w: stripe_event("transfer.created", transfer("abc")), "invalid_event_data"),
    # A transfer Kobatela did not make (another product's) naming one of our payment ids.
    "our payment_id on a transfer of another group": (
        lambda w: stripe_event("transfer.created", transfer(w.payment.pk, group="order-77")),
        "transfer_group_mismatch"),
    "our payment_id on a transfer without group": (
        lambda w: stripe_event("transfer.created", transfer(w.payment.pk, group=None)), "transfer_group_mismatch"),
    "reversal naming only an escrow": (
        lambda w: stripe_event("transfer.reversed", {**transfer(w.payment.pk), "amount_reversed": 10000,
                                                     "metadata": {"escrow_id": str(w.escrow.pk)}}),
        "invalid_event_data"),
    "payout of no payment": (
        lambda w: stripe_event("payout.paid", {"id": "po_9", "object": "payout", "amount": 10000, "currency": "usd",
                                               "metadata": {"payment_id": UNKNOWN_ID}}),
        "payment_not_found"),
    "payout with a huge payment_id": (
        lambda w: stripe_event("payout.failed", {"id": "po_8", "object": "payout", "amount": 10000,
                                                 "currency": "usd", "metadata": {"payment_id": HUGE}}),
        "invalid_event_data"),
    "payout that is a transfer": (
        lambda w: stripe_event("payout.paid", transfer(w.payment.pk)), "unexpected_object"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(LOOKS_OURS), ids=list(LOOKS_OURS))
def test_signed_events_that_look_ours_but_are_unusable_are_stored_failed_with_an_alert(world, case):
    build, code = LOOKS_OURS[case]
    event = build(world)
    before, unusable, alerts = books(), metric("unusable"), Alert.objects.count()

    response = deliver(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "failed", "error": code}
    stored = InboundEvent.objects.get()
    assert (stored.event_id, stored.status, stored.attempts) == (event["id"], InboundEvent.Status.FAILED, 1)
    assert stored.error.startswith(f"{code}: ") and stored.result["error"]["code"] == code
    assert stored.result["unusable"] is True and stored.processed_at is None
    assert metric("unusable") == unusable + 1
    alert = unusable_alerts().get()
    assert Alert.objects.count() == alerts + 1
    assert (alert.data["provider"], alert.data["event_id"], alert.data["code"]) == ("stripe", event["id"], code)
    assert alert.data["inbound_event_id"] == stored.pk

    # A replay is processed again and fails the same way; the alert is not repeated.
    assert deliver(event).json() == {"received": True, "status": "failed", "error": code}
    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.result["error"]["code"]) == (InboundEvent.Status.FAILED, 2, code)
    assert metric("unusable") == unusable + 2
    assert unusable_alerts().count() == 1

    assert books() == before


@pytest.mark.django_db
def test_reprocessing_an_unusable_event_parses_the_stored_body_again_and_fails_the_same_way(world):
    event = _funding(world, escrow_id="abc")
    assert deliver(event).json()["error"] == "invalid_event_data"
    stored = InboundEvent.objects.get()
    first = (stored.error, stored.result)
    assert first[1]["error"]["details"] == {"escrow_id": ["A valid integer is required."]}
    before = books()

    with pytest.raises(CommandError, match="1 of 1 event"):
        call_command("reprocess_webhooks", "--all-failed", stdout=(out := io.StringIO()))
    assert "invalid_event_data" in out.getvalue()
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (InboundEvent.Status.FAILED, 2)
    assert (stored.error, stored.result) == first
    assert unusable_alerts().count() == 1
    assert books() == before


@pytest.mark.django_db
def test_funding_reported_before_its_session_is_recorded_is_processed_by_a_reprocess(fake_stripe):
    """The process died between Stripe's answer and the record of the session,
    and the client paid: the event fails (with an alert); once the client's
    retry of the funding-session request records the session (same
    idempotency key, same PaymentIntent), support reprocesses the stored event."""
    escrow = make_escrow(amounts=("100.00",))
    pi_id = "pi_fake000001"  # the fake's first PaymentIntent
    intent = {"id": pi_id, "object": "payment_intent", "amount": 10000, "amount_received": 10000, "currency": "usd",
              "status": "succeeded", "metadata": {"escrow_id": str(escrow.pk)}}
    response = deliver(stripe_event("payment_intent.succeeded", intent))
    assert response.json() == {"received": True, "status": "failed", "error": "funding_session_not_found"}
    stored = InboundEvent.objects.get()
    assert unusable_alerts().count() == 1

    assert escrow_funding_session(actor=actor_for(escrow.client), escrow_id=escrow.pk).session_id == pi_id
    call_command("reprocess_webhooks", "--id", str(stored.pk), stdout=(out := io.StringIO()))
    assert "PROCESSED" in out.getvalue()
    stored.refresh_from_db()
    escrow.refresh_from_db()
    assert (stored.status, stored.attempts, stored.error) == (InboundEvent.Status.PROCESSED, 2, "")
    assert (escrow.status, escrow.amount_funded) == (EscrowStatus.FUNDED, Decimal("100.00"))


@pytest.mark.django_db
def test_a_rule_refusing_a_usable_event_is_failed_without_an_alert(fake_stripe):
    """A business refusal (not an unusable event) keeps its own metric label and raises no alert."""
    escrow = make_escrow(amounts=("100.00",))
    intent = {**funding_intent(fake_stripe, escrow), "currency": "eur"}
    failed = metric("failed")
    response = deliver(stripe_event("payment_intent.succeeded", intent))
    assert response.json() == {"received": True, "status": "failed", "error": "funding_currency_mismatch"}
    assert metric("failed") == failed + 1
    assert "unusable" not in InboundEvent.objects.get().result
    assert not unusable_alerts().exists()


# --- payouts -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_transfer_and_payout_events_drive_the_payment():
    escrow = fund(make_escrow(amounts=("100.00",)))
    escrow_client_approve(actor=actor_for(escrow.client), escrow_id=escrow.pk)  # payout task not run: PENDING
    payment = Payment.objects.get(escrow=escrow)
    meta = {"payment_id": str(payment.pk), "escrow_id": str(escrow.pk)}
    group = f"payment-{payment.pk}"

    sent = deliver(stripe_event("transfer.created", {"id": "tr_1", "object": "transfer", "amount": 10000,
                                                     "currency": "usd", "transfer_group": group, "metadata": meta}))
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
                                                         "transfer_group": group, "metadata": meta}))
    assert partial.json() == {"received": True, "status": "failed", "error": "payment_amount_mismatch"}
    full = deliver(stripe_event("transfer.reversed", {"id": "tr_1", "object": "transfer", "amount": 10000,
                                                      "amount_reversed": 10000, "currency": "usd",
                                                      "transfer_group": group, "metadata": meta}))
    assert full.json() == {"received": True, "status": "processed"}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert not unusable_alerts().exists()  # business refusals only


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
    assert (payment.status, payment.last_error, payment.failure_code) == (
        PaymentStatus.FAILED, "The bank account has been closed.", "account_closed")


# --- admin ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_ignored_and_unusable_events_with_their_reason_and_reprocesses_them(admin_client, world):
    deliver(stripe_event("payment_intent.succeeded", {**payment_intent(world.escrow), "metadata": {"order": "1"}}))
    deliver(_funding(world, escrow_id="abc"))
    ignored = InboundEvent.objects.get(status=InboundEvent.Status.IGNORED)
    failed = InboundEvent.objects.get(status=InboundEvent.Status.FAILED)

    changelist = reverse("admin:webhooks_inboundevent_changelist")
    page = admin_client.get(changelist, {"status__exact": "IGNORED"})
    assert page.status_code == 200
    assert ignored.event_id.encode() in page.content and failed.event_id.encode() not in page.content
    assert b"not_ours" in page.content
    page = admin_client.get(changelist, {"status__exact": "FAILED"})
    assert failed.event_id.encode() in page.content and b"invalid_event_data" in page.content

    before = books()
    response = admin_client.post(changelist, {"action": "reprocess", "_selected_action": [ignored.pk, failed.pk]},
                               follow=True)
    assert response.status_code == 200
    assert b"1 event(s) still ignored (not Kobatela events)" in response.content
    assert b"1 event(s) still failing: #%d (invalid_event_data)" % failed.pk in response.content
    ignored.refresh_from_db()
    failed.refresh_from_db()
    assert (ignored.status, ignored.attempts) == (InboundEvent.Status.IGNORED, 2)
    assert (failed.status, failed.attempts) == (InboundEvent.Status.FAILED, 2)
    assert unusable_alerts().count() == 1
    assert books() == before


# Stripe refund events (refund.updated, charge.refund.updated, refund.created, refund.failed), end to end
# through the Stripe adapter and the fake Stripe: tests/webhooks/test_stripe_refunds.py.
