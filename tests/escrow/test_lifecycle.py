import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from escrow import deadlines, services
from escrow.models import EscrowAgreement, EscrowStatus, Milestone, MilestoneStatus, Refund, RefundStatus
from escrow.refunds import refund_settle, refunds_sweep
from escrow.selectors import escrow_lock
from kobatela.audit.models import Alert
from kobatela.core.errors import Conflict
from kobatela.core.state import transition
from payments.models import Payment, PaymentStatus
from payments.reconcile import reconcile
from tests.conftest import assert_error
from tests.factories import actor_for, fund, make_escrow

pytestmark = pytest.mark.django_db

# The lifecycles, written out here rather than read from the models: a wrong
# edge in ALLOWED_TRANSITIONS must make these tests fail, not follow it.
ESCROW_TRANSITIONS = {
    "DRAFT": {"FUNDED", "CANCELLED", "REFUNDED"},  # REFUNDED: a partly funded draft gives its deposits back
    "FUNDED": {"RELEASABLE", "RELEASED", "REFUNDED"},
    "RELEASABLE": {"FUNDED", "RELEASED", "REFUNDED"},
    "RELEASED": {"RELEASABLE"},  # a settled payout came back (refunded)
    "REFUNDED": set(),
    "CANCELLED": set(),
}
MILESTONE_TRANSITIONS = {
    "WAITING": {"PENDING_REVIEW", "APPROVED", "RESOLVED"},  # RESOLVED: a dispute resolution decided
    "PENDING_REVIEW": {"APPROVED", "REJECTED", "RESOLVED"},
    "REJECTED": {"PENDING_REVIEW", "APPROVED", "RESOLVED"},
    "APPROVED": {"PAID", "RESOLVED"},
    "PAID": {"APPROVED"},  # a settled payout came back (refunded)
    "RESOLVED": set(),
}
# A milestone's payout is part of the escrow's lifecycle (and its table is tested nowhere else).
PAYMENT_TRANSITIONS = {
    "SCHEDULED": {"PENDING", "CANCELLED"},  # an inspection window passed, or a dispute resolution decided
    "PENDING": {"SENT", "ERROR", "SETTLED", "FAILED"},
    "ERROR": {"SENT", "ERROR", "SETTLED", "FAILED"},
    "SENT": {"SETTLED", "ERROR", "FAILED"},
    "FAILED": {"PENDING", "CANCELLED"},  # retried by an explicit execute
    "SETTLED": {"REFUNDED", "RETURNED"},
    "RETURNED": {"PENDING", "CANCELLED"},
    "REFUNDED": set(),
    "CANCELLED": set(),
}


def every_pair(table: dict[str, set[str]]) -> list:
    """(source, target, allowed) for every pair of states, allowed or not."""
    return [pytest.param(source, target, target in table[source], id=f"{source}->{target}")
            for source in table for target in table]


@pytest.mark.parametrize("model, statuses, expected", [
    (EscrowAgreement, EscrowStatus, ESCROW_TRANSITIONS),
    (Milestone, MilestoneStatus, MILESTONE_TRANSITIONS),
    (Payment, PaymentStatus, PAYMENT_TRANSITIONS),
], ids=["escrow", "milestone", "payment"])
def test_the_models_transition_tables_are_the_expected_ones(model, statuses, expected):
    assert set(statuses.values) == set(expected)
    assert {source: set(targets) for source, targets in model.ALLOWED_TRANSITIONS.items()} == expected


def assert_moves_or_is_refused(obj, target: str, allowed: bool, noun: str) -> None:
    """Through ``transition``, the one step every service takes (escrow, payments, spend)."""
    source = obj.status
    if allowed:
        transition(obj, target)
        assert obj.status == target
    else:
        with pytest.raises(Conflict) as refused:
            transition(obj, target)
        assert (refused.value.status, refused.value.code) == (409, f"{noun}_is_{source.lower()}")
        assert refused.value.details == {"status": source, "wanted": target}
        assert obj.status == source


@pytest.mark.parametrize("source, target, allowed", every_pair(ESCROW_TRANSITIONS))
def test_escrow_transitions(source, target, allowed):
    assert_moves_or_is_refused(EscrowAgreement(status=source), target, allowed, "escrow")


@pytest.mark.parametrize("source, target, allowed", every_pair(MILESTONE_TRANSITIONS))
def test_milestone_transitions(source, target, allowed):
    assert_moves_or_is_refused(Milestone(status=source), target, allowed, "milestone")


@pytest.mark.parametrize("source, target, allowed", every_pair(PAYMENT_TRANSITIONS))
def test_payment_transitions(source, target, allowed):
    assert_moves_or_is_refused(Payment(status=source), target, allowed, "payment")


def post(api, escrow, verb, body=None):
    return api.post(f"/api/v1/escrows/{escrow.pk}/{verb}", body or {}, format="json")


def test_mark_delivered(sender_api):
    escrow = make_escrow(client=sender_api.user)
    assert_error(post(sender_api, escrow, "mark-delivered"), 409, "escrow_is_draft")
    fund(escrow)
    response = post(sender_api, escrow, "mark-delivered", {"note": "done"})
    assert response.status_code == 200 and response.json()["status"] == "RELEASABLE"
    assert_error(post(sender_api, escrow, "mark-delivered"), 409, "escrow_is_releasable")


def settle_all(escrow):
    for payment in Payment.objects.filter(escrow=escrow).order_by("pk"):
        services.escrow_settle_payout(actor="system:test", payment_id=payment.pk, psp_ref=payment.psp_ref,
                                        amount=payment.amount, currency=payment.currency)


def test_client_approve_pays_out_and_settlement_releases(sender_api, django_capture_on_commit_callbacks):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("60.00", "40.00")))
    assert_error(post(sender_api, make_escrow(client=sender_api.user), "client-approve"), 409, "escrow_is_draft")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(sender_api, escrow, "client-approve", {"note": "all good"})
    assert response.status_code == 200
    assert [m["status"] for m in response.json()["milestones"]] == ["APPROVED", "APPROVED"]
    payments = list(Payment.objects.filter(escrow=escrow).order_by("pk"))
    assert [p.status for p in payments] == [PaymentStatus.SENT, PaymentStatus.SENT]
    assert all(p.psp_ref.startswith("sbx_po_") for p in payments)
    assert_error(post(sender_api, escrow, "client-approve"), 409, "nothing_to_approve")
    settle_all(escrow)
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.RELEASED and escrow.amount_released == Decimal("100.00")
    assert list(escrow.milestones.values_list("status", flat=True)) == ["PAID", "PAID"]
    assert reconcile() == []
    assert_error(post(sender_api, escrow, "client-approve"), 409, "escrow_is_released")


def test_client_reject_sends_milestones_back(sender_api):
    escrow = fund(make_escrow(client=sender_api.user))
    assert_error(post(sender_api, escrow, "client-reject", {"reason": "no"}), 409, "escrow_is_funded")
    assert_error(post(sender_api, escrow, "client-reject", {}), 400, "validation_error")
    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        services.milestone_mark_pending_review(actor="system:test", escrow=locked, milestone=locked.milestones.get())
    response = post(sender_api, escrow, "client-reject", {"reason": "photo shows the wrong site"})
    assert response.status_code == 200
    assert response.json()["status"] == "FUNDED"
    assert response.json()["milestones"][0]["status"] == "REJECTED"


def _put_in_review(escrow, idx=1):
    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        services.milestone_mark_pending_review(actor="system:test", escrow=locked, milestone=locked.milestones.get(idx=idx))


def test_deadline_auto_approves_waiting_proofs_and_notifies_the_rest(sender_api, django_capture_on_commit_callbacks):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("70.00", "30.00"), deadline_in=timedelta(days=1)))
    _put_in_review(escrow, idx=1)
    early = post(sender_api, escrow, "check-deadline")
    assert early.status_code == 200 and early.json()["deadline_outcome"]["applied"] is False
    assert early.json()["id"] == escrow.pk and "milestones" in early.json()  # EscrowRead, like every action
    with time_machine.travel(timezone.now() + timedelta(days=2)), django_capture_on_commit_callbacks(execute=True):
        late = post(sender_api, escrow, "check-deadline").json()
        again = post(sender_api, escrow, "check-deadline").json()
    outcome = late["deadline_outcome"]
    assert outcome["applied"] is True and outcome["policy"] == "auto_approve"
    assert outcome["approved"] == [1] and outcome["notified"] == [2]
    assert [m["status"] for m in late["milestones"]] == ["APPROVED", "WAITING"]
    assert again["deadline_outcome"]["applied"] is False
    assert Payment.objects.get(milestone__escrow=escrow).status == PaymentStatus.SENT
    assert Alert.objects.filter(type="escrow_deadline_missed", data__escrow_id=escrow.pk).count() == 1
    assert reconcile() == []


def test_deadline_notify_policy_never_moves_money(settings):
    settings.ESCROW_DEADLINE_POLICY = "notify"
    escrow = fund(make_escrow(deadline_in=timedelta(hours=1)))
    _put_in_review(escrow)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        outcome = deadlines.escrow_check_deadline(actor="system:test", escrow_id=escrow.pk)
    assert outcome.approved_idx == () and outcome.notified_idx == (1,)
    assert not Payment.objects.filter(escrow=escrow).exists()


def test_deadline_refund_policy_returns_the_rest_through_the_psp(settings, django_capture_on_commit_callbacks):
    """The ``refund`` policy refunds what no approved milestone needs through the refund service:
    a Refund row sent to the PSP; the escrow ends when the refund and the payout have settled."""
    settings.ESCROW_DEADLINE_POLICY = "refund"
    escrow = fund(make_escrow(amounts=("70.00", "30.00"), deadline_in=timedelta(hours=1)))
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            locked = escrow_lock(escrow.pk)
            services.milestone_approve(actor="system:test", escrow=locked, milestone=locked.milestones.get(idx=1),
                                       reason="test")
    payout = Payment.objects.get(escrow=escrow)
    with time_machine.travel(timezone.now() + timedelta(hours=2)), \
            django_capture_on_commit_callbacks(execute=True):
        outcome = deadlines.escrow_check_deadline(actor="system:test", escrow_id=escrow.pk)
    refund = Refund.objects.get(escrow=escrow)
    assert outcome.refunded == Decimal("30.00") and outcome.refund_id == refund.pk
    assert (refund.amount, refund.status, refund.reason) == (Decimal("30.00"), RefundStatus.SENT, "deadline_passed")
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.FUNDED and escrow.amount_refunded == Decimal("30.00")
    assert reconcile() == []
    refund_settle(actor="system:test", refund_id=refund.pk, psp_ref=refund.psp_ref)
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.FUNDED  # the payout is still on its way
    payout.refresh_from_db()
    services.escrow_settle_payout(actor="system:test", payment_id=payout.pk, psp_ref=payout.psp_ref)
    escrow.refresh_from_db()
    # As the refund path ends an escrow part paid, part refunded.
    assert (escrow.status, escrow.amount_released, escrow.amount_refunded) == (
        EscrowStatus.RELEASED, Decimal("70.00"), Decimal("30.00"))
    assert reconcile() == []


def test_deadline_refund_policy_requests_one_psp_refund_and_ends_refunded(settings, monkeypatch,
                                                                           django_capture_on_commit_callbacks):
    """The beat job, a second beat, the client's check-deadline and the refund sweeper all run
    past the deadline: one Refund row, one PSP refund (sandbox, key ``refund-<id>``, one attempt);
    the sandbox PSP's signed refund.settled makes the escrow REFUNDED; replayed, nothing more."""
    from django.test import Client

    from kobatela.events.models import Event
    from payments.ledger import balance, escrow_account
    from payments.psp import sandbox
    from tests.support.psp import SECRET, sign_headers

    monkeypatch.setenv("PSP_WEBHOOK_SECRET", SECRET)
    sandbox.reset()
    settings.ESCROW_DEADLINE_POLICY = "refund"
    escrow = fund(make_escrow(amounts=("60.00", "40.00"), deadline_in=timedelta(hours=1)))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        with django_capture_on_commit_callbacks(execute=True):
            assert deadlines.escrows_apply_deadlines() == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert deadlines.escrows_apply_deadlines() == 0
            assert deadlines.escrow_check_deadline(actor=actor_for(escrow.client), escrow_id=escrow.pk).applied is False
        assert refunds_sweep(pending_grace_seconds=0) == 0  # SENT: nothing left for the sweeper
    refund = Refund.objects.get(escrow=escrow)
    assert (refund.amount, refund.status, refund.attempts, refund.created_by) == (
        Decimal("100.00"), RefundStatus.SENT, 1, "system:deadline_job")
    assert list(sandbox.recorded_refunds()) == [f"refund-{refund.pk}"]
    assert sandbox.recorded_refunds()[f"refund-{refund.pk}"].amount == Decimal("100.00")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_refunded) == (EscrowStatus.FUNDED, Decimal("100.00"))
    assert Event.objects.filter(type="refund.created").count() == 1
    assert reconcile() == []

    body = json.dumps({"type": "refund.settled", "data": {"refund_id": refund.pk, "psp_ref": refund.psp_ref,
                                                          "amount": "100.00", "currency": refund.currency}}).encode()
    for _ in range(2):  # the second is the same message again: a duplicate
        response = Client().post("/api/v1/psp/webhook", data=body, content_type="application/json",
                                 headers=sign_headers(body, msg_id="msg-deadline-refund"))
        assert response.status_code == 200, response.content
    assert response.json() == {"duplicate": True}
    refund.refresh_from_db()
    escrow.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED
    assert (escrow.status, escrow.amount_refunded) == (EscrowStatus.REFUNDED, Decimal("100.00"))
    assert balance(escrow_account(escrow.pk)) == 0
    assert Event.objects.filter(type="escrow.refunded").count() == 1
    assert list(sandbox.recorded_refunds()) == [f"refund-{refund.pk}"]
    assert reconcile() == []
    sandbox.reset()


def test_beat_job_applies_due_deadlines_once():
    due = fund(make_escrow(deadline_in=timedelta(hours=1)))
    not_due = fund(make_escrow(deadline_in=timedelta(days=5)))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert deadlines.escrows_apply_deadlines() == 1
        assert deadlines.escrows_apply_deadlines() == 0
    due.refresh_from_db(), not_due.refresh_from_db()
    assert due.deadline_handled_at is not None and not_due.deadline_handled_at is None


def test_milestone_payouts_and_payee_spends_share_the_escrow_funds(sender_api, settings):
    """Money spent on an allowed payee is no longer there for a milestone, nor for a refund."""
    from spend.services import payee_allow, payee_spend

    escrow = fund(make_escrow(client=sender_api.user, amounts=("60.00", "40.00"), deadline_in=timedelta(hours=1)))
    payee_allow(actor="system:test", escrow_id=escrow.pk, payee_ref="acct_supplier", label="Cement supplier")
    payee_spend(actor=actor_for(sender_api.user), escrow_id=escrow.pk, payee_ref="acct_supplier",
                amount=Decimal("50.00"), idempotency_key="s1")
    error = assert_error(post(sender_api, escrow, "client-approve"), 409, "insufficient_escrow_funds")
    assert error["details"] == {"available": "50.00", "amount": "60.00"}
    assert not Payment.objects.filter(escrow=escrow, milestone__isnull=False).exists()
    settings.ESCROW_DEADLINE_POLICY = "refund"
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        outcome = deadlines.escrow_check_deadline(actor="system:test", escrow_id=escrow.pk)
    assert outcome.refunded == Decimal("50.00")  # the 50.00 promised to the payee stays
    assert reconcile() == []
