"""The unhappy paths of money (#15), end to end through the API and the sandbox PSP's signed webhooks:
disputes, refunds, cancellation, partial approval, inspection windows, failed and returned payouts.

Transactional (``transaction=True``): tasks queued on commit run for real (eager),
as in ``make run``. Every test ends with ``reconcile() == []`` (conftest)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from escrow.models import EscrowStatus, MilestoneStatus, Refund
from kobatela.audit.models import Alert, AuditLog
from kobatela.events.models import Event
from payments.ledger import balance, escrow_account
from payments.models import Payment, PaymentStatus
from payments.psp import sandbox
from payments.reconcile import reconcile
from tests.conftest import _keyed_client, assert_error
from tests.factories import UserFactory, fund, make_escrow
from tests.support.psp import sign_headers
from webhooks.models import InboundEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("psp_sandbox")]
D = Decimal


def psp(event_type: str, msg_id: str | None = None, **data) -> dict:
    """The sandbox PSP sends its signed webhook; the answer's body."""
    body = json.dumps({"type": event_type, "data": {k: str(v) if isinstance(v, Decimal) else v
                                                      for k, v in data.items()}}).encode()
    response = Client().post("/api/v1/psp/webhook", data=body, content_type="application/json",
                             headers=sign_headers(body, msg_id=msg_id))
    assert response.status_code == 200, response.content
    return response.json()


def settle_payout(payment: Payment, msg_id: str | None = None) -> dict:
    payment.refresh_from_db()
    return psp("payout.settled", msg_id, payment_id=payment.pk, psp_ref=payment.psp_ref, amount=payment.amount,
               currency=payment.currency)


def settle_refund(refund: Refund, msg_id: str | None = None) -> dict:
    refund.refresh_from_db()
    return psp("refund.settled", msg_id, refund_id=refund.pk, psp_ref=refund.psp_ref, amount=refund.amount,
               currency=refund.currency)


def post(api, url: str, body: dict | None = None, key: str | None = None):
    return api.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex)


def approve_all(api, escrow):
    response = post(api, f"/api/v1/escrows/{escrow.pk}/client-approve")
    assert response.status_code == 200, response.content


def books_clean():
    assert reconcile() == []


# --- disputes ---------------------------------------------------------------------------


def test_dispute_resolved_60_40_pays_the_provider_and_refunds_the_client():
    sender, support = _keyed_client(["sender"]), _keyed_client(["support"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    opened = post(sender, f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "Half the goods are broken."})
    assert opened.status_code == 201, opened.content
    dispute = opened.json()
    assert dispute["status"] == "OPEN" and dispute["opened_by"] == "client" and dispute["amount_held"] == "100.00"
    assert dispute["milestone_ids"] == [escrow.milestones.get().pk] and dispute["resolution"] is None
    books_clean()

    # while OPEN: the client cannot approve it, refund it, nor open a second one
    assert_error(post(sender, f"/api/v1/escrows/{escrow.pk}/client-approve"), 409, "nothing_to_approve")
    assert_error(post(sender, f"/api/v1/escrows/{escrow.pk}/refund", {"reason": "x"}), 409, "escrow_disputed")
    assert_error(post(sender, f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "again"}), 409, "already_disputed")

    msg = post(sender, f"/api/v1/disputes/{dispute['id']}/messages", {"body": "Photos attached."})
    assert msg.status_code == 201 and msg.json()["messages"][0]["author"] == "client"
    assert post(support, f"/api/v1/disputes/{dispute['id']}/messages", {"body": "Looking."}).status_code == 201

    # a split that does not add up is a 400 and changes nothing; the client cannot resolve
    assert_error(post(support, f"/api/v1/disputes/{dispute['id']}/resolve",
                      {"release_amount": "60.00", "refund_amount": "30.00", "note": "n"}), 400, "split_mismatch")
    assert post(sender, f"/api/v1/disputes/{dispute['id']}/resolve",
                {"release_amount": "60.00", "refund_amount": "40.00", "note": "n"}).status_code == 403
    resolved = post(support, f"/api/v1/disputes/{dispute['id']}/resolve",
                    {"release_amount": "60.00", "refund_amount": "40.00", "note": "Split by the evidence."})
    assert resolved.status_code == 200, resolved.content
    resolution = resolved.json()["resolution"]
    assert resolved.json()["status"] == "RESOLVED"
    assert (resolution["release_amount"], resolution["refund_amount"]) == ("60.00", "40.00")
    books_clean()

    payment = Payment.objects.get(escrow=escrow)
    refund = Refund.objects.get(escrow=escrow)
    assert (payment.amount, payment.status) == (D("60.00"), PaymentStatus.SENT)
    assert (refund.amount, refund.status, refund.dispute_id) == (D("40.00"), "SENT", dispute["id"])
    assert f"refund-{refund.pk}" in sandbox.recorded_refunds()
    settle_payout(payment)
    books_clean()
    settle_refund(refund)
    books_clean()

    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_released, escrow.amount_refunded) == ("RELEASED", D("60.00"), D("40.00"))
    assert escrow.milestones.get().status == MilestoneStatus.RESOLVED
    assert balance(escrow_account(escrow.pk)) == 0
    types = set(Event.objects.filter(account_id=sender.user.pk).values_list("type", flat=True))
    assert {"dispute.opened", "dispute.message", "dispute.resolved", "refund.created", "refund.settled",
            "payment.settled", "escrow.released"} <= types
    assert AuditLog.objects.filter(action="dispute.resolved").count() == 1
    listed = sender.get(f"/api/v1/refunds?escrow_id={escrow.pk}").json()
    assert [r["status"] for r in listed["results"]] == ["SETTLED"]
    payments = sender.get(f"/api/v1/payments?escrow_id={escrow.pk}").json()["results"]
    assert [(p["amount"], p["status"]) for p in payments] == [("60.00", "SETTLED")]


def test_dispute_covers_only_what_has_not_left_and_can_be_withdrawn():
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("30.00", "70.00")))
    from django.db import transaction

    from escrow.selectors import escrow_lock
    from escrow.services import milestone_approve
    from tests.factories import actor_for

    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        milestone_approve(actor=actor_for(sender.user), escrow=locked, milestone=escrow.milestones.get(idx=1), reason="t")
    # milestone 1's payout is on its way: not disputable; milestone 2 is
    assert_error(post(sender, f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "r", "milestone_idx": 1}), 409,
                 "nothing_to_dispute")
    opened = post(sender, f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "r"})
    assert opened.status_code == 201 and opened.json()["amount_held"] == "70.00"
    assert opened.json()["milestone_ids"] == [escrow.milestones.get(idx=2).pk]
    other = _keyed_client(["sender"])
    assert_error(other.get(f"/api/v1/disputes/{opened.json()['id']}"), 404)
    assert_error(post(other, f"/api/v1/disputes/{opened.json()['id']}/withdraw"), 404, "dispute_not_found")
    withdrawn = post(sender, f"/api/v1/disputes/{opened.json()['id']}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "WITHDRAWN"
    assert_error(post(sender, f"/api/v1/disputes/{opened.json()['id']}/messages", {"body": "x"}), 409,
                 "dispute_is_withdrawn")
    assert_error(post(sender, f"/api/v1/disputes/{opened.json()['id']}/withdraw"), 409, "dispute_is_withdrawn")
    books_clean()


def test_a_provider_key_may_open_a_dispute_as_the_provider():
    """The providers branch adds the ``provider`` scope to the API; the service already takes it."""
    from escrow.disputes import dispute_open
    from kobatela.core.actor import Actor

    provider = UserFactory()
    escrow = fund(make_escrow(provider=provider, amounts=("50.00",)))
    actor = Actor(label=f"apikey:p{provider.pk}", user=provider, scopes=frozenset({"provider"}))
    dispute = dispute_open(actor=actor, escrow_id=escrow.pk, reason="Not paid for extra work.")
    assert (dispute.opened_by, dispute.amount_held) == ("provider", D("50.00"))
    stranger = Actor(label="apikey:x", user=UserFactory(), scopes=frozenset({"provider"}))
    with pytest.raises(Exception) as exc:
        dispute_open(actor=stranger, escrow_id=escrow.pk, reason="r")
    assert getattr(exc.value, "code", None) == "escrow_not_found"


# --- refunds and cancellation ------------------------------------------------------------


def test_refund_partial_twice_then_full_reaches_refunded():
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    url = f"/api/v1/escrows/{escrow.pk}/refund"
    first = post(sender, url, {"amount": "10.00", "reason": "Cancelled part of the order."})
    assert first.status_code == 201, first.content
    assert (first.json()["amount"], first.json()["dispute_id"]) == ("10.00", None)
    second = post(sender, url, {"amount": "25.50", "reason": "Another part."})
    assert second.status_code == 201
    assert_error(post(sender, url, {"amount": "64.51", "reason": "Too much."}), 409, "refund_exceeds_refundable")
    books_clean()
    rest = post(sender, url, {"reason": "The rest."})
    assert rest.status_code == 201 and rest.json()["amount"] == "64.50"
    assert_error(post(sender, url, {"reason": "Nothing left."}), 409, "nothing_to_refund")
    refunds = list(Refund.objects.filter(escrow=escrow).order_by("pk"))
    assert [r.status for r in refunds] == ["SENT"] * 3
    for i, refund in enumerate(refunds):
        settle_refund(refund)
        books_clean()
        escrow.refresh_from_db()
        assert escrow.status == (EscrowStatus.REFUNDED if i == 2 else EscrowStatus.FUNDED)
    assert escrow.amount_refunded == D("100.00") and balance(escrow_account(escrow.pk)) == 0
    assert set(sandbox.recorded_refunds()) == {f"refund-{r.pk}" for r in refunds}


def test_a_failed_refund_is_booked_back_and_refundable_again():
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    refund_id = post(sender, f"/api/v1/escrows/{escrow.pk}/refund", {"amount": "40.00", "reason": "r"}).json()["id"]
    psp("refund.failed", "evt-refund-failed", refund_id=refund_id, failure_code="charge_disputed")
    books_clean()
    refund = Refund.objects.get(pk=refund_id)
    escrow.refresh_from_db()
    assert (refund.status, refund.failure_code, escrow.amount_refunded) == ("FAILED", "charge_disputed", 0)
    assert Alert.objects.filter(type="refund_failed").count() == 1
    assert sender.get(f"/api/v1/refunds/{refund_id}").json()["status"] == "FAILED"
    # replayed (same event id) and re-sent (new id): no second effect
    assert psp("refund.failed", "evt-refund-failed", refund_id=refund_id)["duplicate"] is True
    psp("refund.failed", refund_id=refund_id, failure_code="again")
    escrow.refresh_from_db()
    assert escrow.amount_refunded == 0 and Alert.objects.filter(type="refund_failed").count() == 1
    books_clean()
    again = post(sender, f"/api/v1/escrows/{escrow.pk}/refund", {"reason": "all"})
    assert again.json()["amount"] == "100.00"
    books_clean()


def test_cancel_an_unfunded_draft_only():
    sender, admin = _keyed_client(["sender"]), _keyed_client(["admin"])
    draft = make_escrow(client=sender.user)
    funded = fund(make_escrow(client=sender.user))
    partly = make_escrow(client=sender.user)
    fund(partly, D("10.00"))
    assert_error(post(sender, f"/api/v1/escrows/{funded.pk}/cancel"), 409, "escrow_is_funded")
    assert_error(post(sender, f"/api/v1/escrows/{partly.pk}/cancel"), 409, "escrow_has_funds")
    assert_error(post(_keyed_client(["sender"]), f"/api/v1/escrows/{draft.pk}/cancel"), 404)
    response = post(sender, f"/api/v1/escrows/{draft.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    assert Event.objects.filter(type="escrow.cancelled").count() == 1
    assert_error(post(admin, f"/api/v1/escrows/{draft.pk}/cancel"), 409, "escrow_is_cancelled")
    # a partly funded draft gives its deposits back
    refund = post(sender, f"/api/v1/escrows/{partly.pk}/refund", {"reason": "Changed my mind."}).json()
    settle_refund(Refund.objects.get(pk=refund["id"]))
    partly.refresh_from_db()
    assert partly.status == EscrowStatus.REFUNDED
    books_clean()


# --- partial approval ----------------------------------------------------------------------


def test_partial_approval_then_refund_of_the_rest():
    from proofs.models import Proof
    from tests.proofs.photo_samples import geotagged_jpeg
    from tests.proofs.test_proof_upload import photo_escrow, upload

    sender, support = _keyed_client(["sender"]), _keyed_client(["support"])
    escrow = photo_escrow(sender.user)
    response = upload(sender, escrow, geotagged_jpeg(None, None, timezone.now()))  # no GPS: waits for review
    assert response.status_code == 201, response.content
    proof = Proof.objects.get(pk=response.json()["id"])
    url = f"/api/v1/proofs/{proof.pk}/decision"
    assert_error(support.post(url, {"decision": "approve", "amount": "60.00"}, format="json"), 400, "note_required")
    assert_error(support.post(url, {"decision": "approve", "amount": "100.00", "note": "n"}, format="json"), 400,
                 "invalid_partial_amount")
    assert_error(support.post(url, {"decision": "reject", "amount": "10.00", "note": "n"}, format="json"), 400)
    decided = support.post(url, {"decision": "approve", "amount": "60.00", "note": "Only 6 of 10 delivered."},
                           format="json")
    assert decided.status_code == 200, decided.content
    payment = Payment.objects.get(escrow=escrow)
    assert (payment.amount, payment.status) == (D("60.00"), PaymentStatus.SENT)
    settle_payout(payment)
    books_clean()
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.RELEASABLE and escrow.milestones.get().status == MilestoneStatus.PAID
    rest = post(sender, f"/api/v1/escrows/{escrow.pk}/refund", {"reason": "The undelivered part."})
    assert rest.status_code == 201 and rest.json()["amount"] == "40.00"
    settle_refund(Refund.objects.get(pk=rest.json()["id"]))
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_released, escrow.amount_refunded) == ("RELEASED", D("60.00"), D("40.00"))
    books_clean()


# --- inspection windows ---------------------------------------------------------------------


def test_inspection_window_schedules_the_payout_and_a_dispute_in_time_stops_it():
    from escrow.services import escrow_release_due_inspections

    sender = _keyed_client(["sender"])
    created = sender.post("/api/v1/escrows", {
        "provider_id": UserFactory().pk, "amount_total": "100.00", "currency": "USD",
        "deadline_at": (timezone.now() + timedelta(days=30)).isoformat(), "inspection_hours": 48,
        "milestones": [{"label": "A", "amount": "50.00", "proof_type": "PHOTO"},
                       {"label": "B", "amount": "50.00", "proof_type": "PHOTO"}]}, format="json")
    assert created.status_code == 201 and created.json()["inspection_hours"] == 48
    escrow = fund(_escrow(created.json()["id"]))
    approve_all(sender, escrow)
    payments = list(Payment.objects.filter(escrow=escrow).order_by("milestone__idx"))
    assert {p.status for p in payments} == {PaymentStatus.SCHEDULED}
    shown = sender.get(f"/api/v1/payments/{payments[0].pk}").json()
    assert shown["status"] == "SCHEDULED" and shown["scheduled_for"] is not None
    assert_error(post(sender, f"/api/v1/payments/{payments[0].pk}/execute"), 409, "payment_is_scheduled")
    assert escrow_release_due_inspections() == 0  # not yet

    opened = post(sender, f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "B is wrong", "milestone_idx": 2})
    assert opened.status_code == 201 and opened.json()["amount_held"] == "50.00"
    with time_machine.travel(timezone.now() + timedelta(hours=49), tick=False):
        assert escrow_release_due_inspections() == 1  # A leaves; B is frozen by the dispute
    for p in payments:
        p.refresh_from_db()
    assert [p.status for p in payments] == [PaymentStatus.SENT, PaymentStatus.SCHEDULED]
    error = assert_error(post(sender, f"/api/v1/payments/{payments[1].pk}/execute"), 409, "payment_on_hold")
    assert error["details"] == {"status": "SCHEDULED", "reason": "disputed"}
    settle_payout(payments[0])
    books_clean()
    # withdrawn: B leaves at the next run
    post(sender, f"/api/v1/disputes/{opened.json()['id']}/withdraw")
    with time_machine.travel(timezone.now() + timedelta(hours=49), tick=False):
        assert escrow_release_due_inspections() == 1
    settle_payout(payments[1])
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.RELEASED
    books_clean()


def _escrow(escrow_id):
    from escrow.models import EscrowAgreement

    return EscrowAgreement.objects.get(pk=escrow_id)


def test_a_dispute_resolution_cancels_a_scheduled_payout():
    sender, admin = _keyed_client(["sender"]), _keyed_client(["admin"])
    escrow = fund(make_escrow(client=sender.user, amounts=("80.00",)))
    escrow.inspection_hours = 24
    escrow.save(update_fields=["inspection_hours"])
    approve_all(sender, escrow)
    scheduled = Payment.objects.get(escrow=escrow)
    dispute = post(sender, f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "Broken."}).json()
    assert dispute["amount_held"] == "80.00"
    resolved = post(admin, f"/api/v1/disputes/{dispute['id']}/resolve",
                    {"release_amount": "0.00", "refund_amount": "80.00", "note": "Full refund."})
    assert resolved.status_code == 200, resolved.content
    scheduled.refresh_from_db()
    assert scheduled.status == PaymentStatus.CANCELLED
    settle_refund(Refund.objects.get(escrow=escrow))
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.REFUNDED
    books_clean()


# --- failed and returned payouts --------------------------------------------------------------


def test_payout_returned_then_retried_and_settled():
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    approve_all(sender, escrow)
    payment = Payment.objects.get(escrow=escrow)
    settle_payout(payment)
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.RELEASED
    first_ref = Payment.objects.get(pk=payment.pk).psp_ref

    psp("payout.returned", "evt-returned", payment_id=payment.pk, failure_code="account_closed")
    books_clean()
    payment.refresh_from_db()
    escrow.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.payout_generation) == ("RETURNED", "account_closed", 2)
    assert (escrow.status, escrow.amount_released) == (EscrowStatus.RELEASABLE, 0)
    assert balance(escrow_account(escrow.pk)) == D("100.00")
    assert Alert.objects.filter(type="payout_returned").count() == 1
    event = Event.objects.get(type="payment.returned")
    assert event.data["failure_code"] == "account_closed" and event.context["failure_code"] == "account_closed"
    # replays: no second effect
    assert psp("payout.returned", "evt-returned", payment_id=payment.pk)["duplicate"] is True
    psp("payout.returned", payment_id=payment.pk, failure_code="account_closed")
    assert Alert.objects.filter(type="payout_returned").count() == 1
    books_clean()
    # the client cannot take the returned payout's money as a refund: it is still the provider's
    assert_error(post(sender, f"/api/v1/escrows/{escrow.pk}/refund", {"reason": "x"}), 409, "nothing_to_refund")

    retried = post(sender, f"/api/v1/payments/{payment.pk}/execute")
    assert retried.status_code == 200, retried.content
    assert retried.json()["status"] == "SENT" and retried.json()["psp_ref"] != first_ref
    assert "payout-%d-g2" % payment.pk in sandbox.recorded_payouts()
    settle_payout(payment)
    books_clean()
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_released) == (EscrowStatus.RELEASED, D("100.00"))


def test_payout_failed_holds_the_money_raises_an_alert_and_retries_on_request():
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    approve_all(sender, escrow)
    payment = Payment.objects.get(escrow=escrow)
    payment.refresh_from_db()
    psp("payout.failed", "evt-failed", payment_id=payment.pk, psp_ref=payment.psp_ref, failure_code="no_account")
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.payout_generation) == ("FAILED", "no_account", 2)
    assert Alert.objects.filter(type="payout_failed").count() == 1
    assert Event.objects.get(type="payment.failed").context == {"failure_code": "no_account"}
    assert psp("payout.failed", "evt-failed", payment_id=payment.pk)["duplicate"] is True
    psp("payout.failed", payment_id=payment.pk, failure_code="again")
    payment.refresh_from_db()
    assert payment.failure_code == "no_account" and Alert.objects.filter(type="payout_failed").count() == 1
    from payments.services import payments_due_for_retry

    assert payment.pk not in payments_due_for_retry(now=timezone.now() + timedelta(days=1))  # only on request
    books_clean()
    retried = post(sender, f"/api/v1/payments/{payment.pk}/execute")
    assert retried.json()["status"] == "SENT"
    assert f"payout-{payment.pk}-g2" in sandbox.recorded_payouts()
    settle_payout(payment)
    books_clean()


def test_every_new_webhook_type_replayed_has_no_second_effect():
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    refund_id = post(sender, f"/api/v1/escrows/{escrow.pk}/refund", {"amount": "30.00", "reason": "r"}).json()["id"]
    refund = Refund.objects.get(pk=refund_id)
    settle_refund(refund, "evt-rs")
    state = (LedgerCount(), Event.objects.count(), AuditLog.objects.filter(action__startswith="refund").count())
    assert settle_refund(refund, "evt-rs")["duplicate"] is True
    settle_refund(refund)  # another id, same refund
    assert state == (LedgerCount(), Event.objects.count(),
                     AuditLog.objects.filter(action__startswith="refund").count())
    # a settled refund cannot fail afterwards
    answer = psp("refund.failed", refund_id=refund_id)
    assert answer["status"] == "failed" and answer["error"] == "refund_is_settled"
    assert InboundEvent.objects.filter(event_type="refund.settled").count() == 2
    books_clean()


def LedgerCount() -> int:
    from payments.models import LedgerEntry

    return LedgerEntry.objects.count()


@pytest.mark.django_db  # not transactional: on_commit never runs, the message is "lost"
def test_a_refund_whose_message_was_lost_is_sent_by_the_sweeper():
    from escrow.refunds import escrow_refund, refunds_sweep
    from tests.factories import actor_for

    escrow = fund(make_escrow(amounts=("100.00",)))
    refund = escrow_refund(actor=actor_for(escrow.client), escrow_id=escrow.pk, amount=D("20.00"), reason="r")
    assert refund.status == "PENDING"
    assert refunds_sweep() == 0  # within its grace period: its task may still be on its way
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        assert refunds_sweep() == 1
    refund.refresh_from_db()
    assert refund.status == "SENT" and refund.attempts == 1 and f"refund-{refund.pk}" in sandbox.recorded_refunds()
    books_clean()


def test_predicates_say_what_the_services_would_do():
    from escrow.rules import may_cancel, may_dispute, may_refund
    from tests.factories import actor_for

    client = UserFactory()
    draft, funded = make_escrow(client=client), fund(make_escrow(client=client))
    me, stranger = actor_for(client), actor_for(UserFactory())
    assert may_cancel(me, draft) and not may_cancel(me, funded) and not may_cancel(stranger, draft)
    assert not may_dispute(me, draft) and may_dispute(me, funded) and not may_dispute(stranger, funded)
    assert not may_refund(me, draft) and may_refund(me, funded) and not may_refund(stranger, funded)
    from escrow.disputes import dispute_open

    dispute_open(actor=me, escrow_id=funded.pk, reason="r")
    assert not may_dispute(me, funded) and not may_refund(me, funded)
