"""#15 under real concurrency: threads against PostgreSQL, released together by a barrier.

A dispute and an approval (a photo auto-approving, the inspection job letting a
payout go) both take the escrow's lock first: the money is either paid before
the dispute — which then covers nothing paid — or frozen by it, never both.
Refunds share the running cap under the same lock.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from escrow.models import Dispute, DisputeStatus, EscrowStatus, MilestoneStatus, Refund
from payments.ledger import balance, escrow_account
from payments.models import Payment, PaymentStatus
from payments.psp import sandbox
from payments.reconcile import reconcile
from tests.conftest import _keyed_client
from tests.factories import fund, make_escrow
from tests.proofs.photo_samples import geotagged_jpeg
from tests.proofs.test_proof_upload import SITE, photo_escrow, upload
from tests.support.concurrency import run_concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_sandbox")]
ROUNDS = 4


def _open_dispute(client, escrow, milestone_idx=1):
    return client.post(f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "race", "milestone_idx": milestone_idx},
                       format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)


def _paid_or_frozen(escrow, dispute_response) -> str:
    """Which of the two outcomes happened; fails on both or neither."""
    milestone = escrow.milestones.get(idx=1)
    payments = list(Payment.objects.filter(milestone=milestone))
    disputes = list(Dispute.objects.filter(escrow=escrow, status=DisputeStatus.OPEN, milestones=milestone))
    released = [p for p in payments if p.status not in (PaymentStatus.SCHEDULED, PaymentStatus.CANCELLED)]
    if released:
        assert not disputes, "a dispute covers a milestone whose payout left"
        assert dispute_response.status_code == 409, dispute_response.content
        assert dispute_response.json()["error"]["code"] == "nothing_to_dispute"
        return "paid"
    assert dispute_response.status_code == 201, dispute_response.content
    assert len(disputes) == 1
    return "frozen"


def test_a_dispute_racing_a_photo_auto_approval_pays_or_freezes_never_both():
    sender = _keyed_client(["sender"])
    outcomes = []
    for _ in range(ROUNDS):
        escrow = photo_escrow(sender.user)
        photo = geotagged_jpeg(*SITE, timezone.now() - timedelta(hours=1))

        def race(client, i, escrow=escrow, photo=photo):
            return upload(client, escrow, photo) if i == 0 else _open_dispute(client, escrow)

        proof_response, dispute_response = run_concurrently(2, sender.plaintext, race)
        assert proof_response.status_code == 201, proof_response.content
        outcome = _paid_or_frozen(escrow, dispute_response)
        milestone = escrow.milestones.get()
        if outcome == "frozen":  # the proof arrived, was never auto-approved, waits for the dispute
            assert proof_response.json()["status"] == "PENDING" and milestone.status == MilestoneStatus.PENDING_REVIEW
        else:
            assert proof_response.json()["status"] == "APPROVED" and milestone.status == MilestoneStatus.APPROVED
        outcomes.append(outcome)
        assert reconcile() == []
    print("photo vs dispute outcomes:", outcomes)


def test_a_dispute_racing_the_inspection_job_pays_or_freezes_never_both():
    from escrow.services import escrow_client_approve, escrow_release_due_inspections
    from tests.factories import actor_for

    sender = _keyed_client(["sender"])
    outcomes = []
    for _ in range(ROUNDS):
        escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
        escrow.inspection_hours = 1
        escrow.save(update_fields=["inspection_hours"])
        escrow_client_approve(actor=actor_for(sender.user), escrow_id=escrow.pk)
        assert Payment.objects.get(escrow=escrow).status == PaymentStatus.SCHEDULED

        def race(client, i, escrow=escrow):
            return escrow_release_due_inspections() if i == 0 else _open_dispute(client, escrow)

        with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
            released, dispute_response = run_concurrently(2, sender.plaintext, race)
        outcome = _paid_or_frozen(escrow, dispute_response)
        payment = Payment.objects.get(escrow=escrow)
        if outcome == "paid":
            assert released == 1 and payment.status == PaymentStatus.SENT
        else:
            assert released == 0 and payment.status == PaymentStatus.SCHEDULED
            assert Dispute.objects.get(escrow=escrow).amount_held == Decimal("100.00")
        outcomes.append(outcome)
        assert reconcile() == []
    print("inspection job vs dispute outcomes:", outcomes)


def test_20_concurrent_refunds_of_10_against_100_never_refund_more_than_100():
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user, amounts=("100.00",)))
    url = f"/api/v1/escrows/{escrow.pk}/refund"
    responses = run_concurrently(20, sender.plaintext, lambda c, i: c.post(
        url, {"amount": "10.00", "reason": f"part {i}"}, format="json", HTTP_IDEMPOTENCY_KEY=f"refund-race-{i}"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 10 and statuses.count(409) == 10, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"nothing_to_refund"}
    escrow.refresh_from_db()
    refunds = Refund.objects.filter(escrow=escrow)
    assert escrow.amount_refunded == Decimal("100.00") == sum(r.amount for r in refunds)
    assert refunds.count() == 10 and len(sandbox.recorded_refunds()) == 10
    assert balance(escrow_account(escrow.pk)) == 0 and escrow.status == EscrowStatus.FUNDED  # until they settle
    assert reconcile() == []
