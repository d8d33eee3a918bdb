"""#15: refunds through Stripe, end to end. The escrow is funded by a PaymentIntent the
real Stripe adapter opened at the local fake Stripe (tests/support/fake_stripe.py) and
Stripe's signed ``payment_intent.succeeded``; the refund is asked through the API
(PSP_PROVIDER=stripe), sent to the fake as a Refund of that PaymentIntent (key
``refund-<id>``, ``metadata.refund_id``), and Stripe's signed refund events — read by
the Refund's ``status`` — settle it, fail it, or wait. Every test ends reconciled (conftest).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from escrow.models import EscrowAgreement, EscrowStatus, Refund, RefundStatus
from kobatela.audit.models import Alert
from kobatela.events.models import Event
from payments.ledger import balance, escrow_account
from payments.models import LedgerEntry
from payments.reconcile import reconcile
from tests.conftest import _keyed_client
from tests.factories import make_escrow
from tests.webhooks.test_stripe_webhook import SECRET, deliver, funding_intent, stripe_event
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def funded(fake_stripe):
    """A sender and its 100.00 USD escrow, funded through Stripe."""
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("100.00",))
    intent = funding_intent(fake_stripe, escrow)
    assert deliver(stripe_event("payment_intent.succeeded", intent)).json()["status"] == "processed"
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_funded) == (EscrowStatus.FUNDED, D("100.00"))
    return sender, escrow, intent


def refund_through_api(sender, escrow, capture, amount: str | None = None) -> Refund:
    body = {"reason": "The order was cancelled.", **({"amount": amount} if amount else {})}
    with capture(execute=True):  # the PSP call runs after commit (escrow.tasks.send_refund, eager)
        response = sender.post(f"/api/v1/escrows/{escrow.pk}/refund", body, format="json",
                               HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
    assert response.status_code == 201, response.content
    return Refund.objects.get(pk=response.json()["id"])


def books() -> dict:
    return {"ledger": list(LedgerEntry.objects.order_by("pk").values_list("pk", "account", "amount")),
            "refunds": list(Refund.objects.order_by("pk").values_list("pk", "status", "psp_ref", "failure_code")),
            "escrows": list(EscrowAgreement.objects.order_by("pk").values_list("pk", "status", "amount_refunded")),
            "events": Event.objects.count(), "alerts": Alert.objects.count()}


def test_a_stripe_refund_is_sent_once_and_settled_by_its_refund_events(funded, fake_stripe,
                                                                       django_capture_on_commit_callbacks):
    sender, escrow, intent = funded
    refund = refund_through_api(sender, escrow, django_capture_on_commit_callbacks, amount="60.00")
    (sent,) = fake_stripe.requests_to("POST", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == f"refund-{refund.pk}"
    assert (sent.form["payment_intent"], sent.form["amount"], sent.form["metadata[refund_id]"]) == (
        intent["id"], "6000", str(refund.pk))
    assert (refund.status, refund.psp_ref) == (RefundStatus.SENT, next(iter(fake_stripe.refunds)))

    # pending: not an outcome — stored IGNORED, answered 200, nothing moves
    before = books()
    pending = stripe_event("refund.updated", dict(fake_stripe.refunds[refund.psp_ref]))
    assert deliver(pending).json() == {"received": True, "status": "ignored"}
    stored = InboundEvent.objects.get(event_id=pending["id"])
    assert stored.status == InboundEvent.Status.IGNORED and stored.error.startswith("refund_not_final: ")
    assert books() == before

    succeeded = stripe_event("refund.updated", fake_stripe.update_refund(refund.psp_ref, "succeeded"))
    assert deliver(succeeded).json() == {"received": True, "status": "processed"}
    refund.refresh_from_db()
    escrow.refresh_from_db()
    assert (refund.status, escrow.status, escrow.amount_refunded) == (RefundStatus.SETTLED, EscrowStatus.FUNDED,
                                                                       D("60.00"))
    assert InboundEvent.objects.get(event_id=succeeded["id"]).result["action"] == "refund.settled"
    assert reconcile() == []

    # replayed, and the same outcome under other events and ids: no second effect
    after = books()
    assert deliver(succeeded).json() == {"duplicate": True}
    same = stripe_event("charge.refund.updated", dict(fake_stripe.refunds[refund.psp_ref]))
    assert deliver(same).json() == {"received": True, "status": "processed"}
    # a late failure of a settled refund is refused by the rule, moves nothing
    late = stripe_event("refund.failed", fake_stripe.update_refund(refund.psp_ref, "failed", "unknown"))
    assert deliver(late).json() == {"received": True, "status": "failed", "error": "refund_is_settled"}
    assert books() == after

    # the rest: a card refund may succeed at once, its refund.created says so; the escrow ends REFUNDED
    rest = refund_through_api(sender, escrow, django_capture_on_commit_callbacks)
    assert rest.amount == D("40.00") and len(fake_stripe.requests_to("POST", "/v1/refunds")) == 2
    created = stripe_event("refund.created", fake_stripe.update_refund(rest.psp_ref, "succeeded"))
    assert deliver(created).json() == {"received": True, "status": "processed"}
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_refunded) == (EscrowStatus.REFUNDED, D("100.00"))
    assert balance(escrow_account(escrow.pk)) == 0
    assert Event.objects.filter(type="refund.settled").count() == 2
    assert Event.objects.filter(type="escrow.refunded").count() == 1
    assert reconcile() == []


@pytest.mark.parametrize("status, failure_reason, failure_code", [
    ("failed", "expired_or_canceled_card", "expired_or_canceled_card"),
    ("failed", None, "refund_failed"),
    ("canceled", None, "refund_canceled"),
])
def test_a_failed_or_canceled_stripe_refund_books_the_money_back(funded, fake_stripe, status, failure_reason,
                                                                 failure_code, django_capture_on_commit_callbacks):
    sender, escrow, _ = funded
    refund = refund_through_api(sender, escrow, django_capture_on_commit_callbacks)
    assert (refund.amount, refund.status) == (D("100.00"), RefundStatus.SENT)
    event_type = "refund.failed" if status == "failed" else "refund.updated"
    event = stripe_event(event_type, fake_stripe.update_refund(refund.psp_ref, status, failure_reason))
    assert deliver(event).json() == {"received": True, "status": "processed"}
    refund.refresh_from_db()
    escrow.refresh_from_db()
    assert (refund.status, refund.failure_code, escrow.status, escrow.amount_refunded) == (
        RefundStatus.FAILED, failure_code, EscrowStatus.FUNDED, D("0.00"))
    assert balance(escrow_account(escrow.pk)) == D("100.00")  # booked back into the escrow
    assert Alert.objects.filter(type="refund_failed", data__refund_id=refund.pk).count() == 1
    assert Event.objects.filter(type="refund.failed").count() == 1
    assert reconcile() == []

    before = books()
    assert deliver(event).json() == {"duplicate": True}
    again = stripe_event("charge.refund.updated", dict(fake_stripe.refunds[refund.psp_ref]))
    assert deliver(again).json() == {"received": True, "status": "processed"}
    assert books() == before

    # refundable again, as a new refund (a new PSP request, a new key)
    retry = refund_through_api(sender, escrow, django_capture_on_commit_callbacks)
    assert retry.amount == D("100.00") and retry.psp_ref != refund.psp_ref
    assert fake_stripe.requests_to("POST", "/v1/refunds")[-1].headers["Idempotency-Key"] == f"refund-{retry.pk}"


def _ours(fake, refund: Refund, **change) -> dict:
    return {**fake.refunds[refund.psp_ref], **change}


CASES = {
    # another Stripe refund carrying our refund_id (metadata copied by hand): a rule refuses it
    "another refund naming ours": (lambda f, r: stripe_event("refund.updated", _ours(f, r, id="re_someone_else",
                                                                                     status="succeeded")),
                                   "failed", "refund_psp_ref_mismatch", False),
    "our refund without a status": (lambda f, r: stripe_event("refund.updated", _ours(f, r, status=None)),
                                    "failed", "invalid_event_data", True),
    "our refund in another currency": (lambda f, r: stripe_event("refund.updated", _ours(f, r, status="succeeded",
                                                                                         currency="eur")),
                                       "failed", "refund_amount_mismatch", False),
    "our refund waiting for the customer": (lambda f, r: stripe_event("refund.updated",
                                                                      _ours(f, r, status="requires_action")),
                                            "ignored", "refund_not_final", False),
    "a refund of another product": (lambda f, r: stripe_event("refund.updated", _ours(f, r, status="succeeded",
                                                                                      metadata={"order": "7"})),
                                    "ignored", "not_ours", False),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_stripe_refund_events_that_cannot_settle_ours_move_nothing(funded, fake_stripe, case,
                                                                   django_capture_on_commit_callbacks):
    sender, escrow, _ = funded
    refund = refund_through_api(sender, escrow, django_capture_on_commit_callbacks, amount="30.00")
    build, status, code, alert = CASES[case]
    before, unusable_alerts = books(), Alert.objects.filter(type="webhook_event_unusable").count()
    event = build(fake_stripe, refund)
    answer = deliver(event).json()
    assert answer["status"] == status and answer.get("error", code) == code
    stored = InboundEvent.objects.get(event_id=event["id"])
    assert stored.error.startswith(f"{code}: ")
    assert Alert.objects.filter(type="webhook_event_unusable").count() == unusable_alerts + alert
    before["alerts"] += alert
    assert books() == before
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SENT
