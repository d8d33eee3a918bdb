"""The deadline policy: what happens to a funded escrow once ``deadline_at`` has passed.

Its own room because it acts through two others: approvals (``escrow.services``)
and refunds (``escrow.refunds``, which itself builds on ``escrow.services``).
The ``refund`` policy books a refund through the one refund service
(``refund_create``), as a client's refund or a dispute's resolution does: a
Refund row, ledger entries, events and audit now, the PSP call (key
``refund-<id>``) after commit, and the escrow ends — REFUNDED, or RELEASED if
part of it was paid — when the refund settles (``escrow_close_if_done``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from escrow.models import EscrowAgreement, EscrowStatus, Milestone, MilestoneStatus, Refund
from escrow.refunds import refund_create
from escrow.selectors import disputed_milestone_ids, escrow_lock, escrow_milestones_lock
from escrow.services import _event, escrow_close_if_done, milestone_approve
from kobatela.audit import services as audit
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.money import ZERO
from kobatela.core.transactions import service_transaction
from payments.selectors import escrow_available_balance

DEADLINE_REFUND_REASON = "deadline_passed"


@dataclass(frozen=True)
class DeadlineOutcome:
    applied: bool
    policy: str
    approved_idx: tuple[int, ...] = ()
    notified_idx: tuple[int, ...] = ()
    refunded: Decimal = ZERO
    refund_id: int | None = None  # the Refund the ``refund`` policy booked, if any

    def as_dict(self) -> dict[str, Any]:
        """``deadline_outcome`` as the API answers it (the contract's fields)."""
        return {"applied": self.applied, "policy": self.policy, "approved": list(self.approved_idx),
                "notified": list(self.notified_idx), "refunded": str(self.refunded)}


def _refund_remaining(*, actor: Actor | str, escrow: EscrowAgreement) -> Refund | None:
    """Refund what the (locked) escrow holds and has promised to no payout, through the
    refund service. With nothing to refund, the escrow ends if nothing else is left to do."""
    refundable = escrow_available_balance(escrow)
    if refundable <= 0:
        escrow_close_if_done(actor=actor, escrow=escrow)
        return None
    return refund_create(actor=actor, escrow=escrow, amount=refundable, reason=DEADLINE_REFUND_REASON)


def escrow_check_deadline(*, actor: Actor | str, escrow_id: int, now: datetime | None = None) -> DeadlineOutcome:
    """Apply ``ESCROW_DEADLINE_POLICY`` once ``deadline_at`` has passed on a funded escrow.

    Policies (per milestone not yet approved):

    - ``auto_approve`` (default): a milestone with a proof waiting for review
      is approved and paid — the client let the deadline pass without
      disputing it; one with no proof is left as it is and the owner is
      notified (an escrow event and an operator alert).
    - ``notify``: never moves money; only the notification above, for all.
    - ``refund``: what no approved milestone needs goes back to the client as
      a refund through the PSP (``refund_create``); the escrow becomes
      REFUNDED (RELEASED if part of it was paid) when the refund and the
      payouts on their way have settled. A refund the PSP fails is booked
      back and raises an alert, for support to retry.

    Milestones under an open dispute are left to the dispute (with ``refund``:
    nothing is refunded while any dispute is open). Idempotent: an escrow is
    handled once (``deadline_handled_at``); later calls report ``applied: false``.
    """
    policy = settings.ESCROW_DEADLINE_POLICY
    now = now or clock.now()
    scoped_actor = actor if isinstance(actor, Actor) else None
    with service_transaction():
        escrow = escrow_lock(escrow_id, scoped_actor)
        if (escrow.deadline_at > now or escrow.deadline_handled_at is not None
                or escrow.status not in (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)):
            return DeadlineOutcome(applied=False, policy=policy)
        disputed = disputed_milestone_ids(escrow.pk)  # the deadline policy does not run on disputed milestones
        open_milestones = [m for m in escrow_milestones_lock(escrow)
                           if m.status in Milestone.OPEN_STATUSES and m.pk not in disputed]
        approved: list[int] = []
        notified: list[int] = []
        refund: Refund | None = None
        if policy == "refund" and disputed:
            notified = [m.idx for m in open_milestones]  # the dispute decides where the money goes
        elif policy == "refund":
            refund = _refund_remaining(actor=actor, escrow=escrow)
        else:
            for m in open_milestones:
                if policy == "auto_approve" and m.status == MilestoneStatus.PENDING_REVIEW:
                    milestone_approve(actor=actor, escrow=escrow, milestone=m, reason="deadline_auto_approved")
                    approved.append(m.idx)
                else:
                    notified.append(m.idx)
        escrow.deadline_handled_at = now
        escrow.save(update_fields=["deadline_handled_at", "updated_at"])
        outcome = DeadlineOutcome(True, policy, tuple(approved), tuple(notified),
                                  refund.amount if refund else ZERO, refund.pk if refund else None)
        recorded = {**outcome.as_dict(), "refund_id": outcome.refund_id}
        _event(escrow, "deadline_passed", actor, recorded)
        if notified:
            audit.alert_raise(type="escrow_deadline_missed", actor=actor,
                              message=f"Escrow #{escrow.pk} passed its deadline with milestones {notified} unproven.",
                              data={"escrow_id": escrow.pk, "milestones": notified})
        audit.record(actor, "escrow.deadline_applied", escrow, recorded)
    return outcome


def escrows_apply_deadlines(*, now: datetime | None = None, limit: int = 500) -> int:
    """The beat job's body: every funded escrow past its deadline, once."""
    now = now or clock.now()
    due = (EscrowAgreement.objects
           .filter(deadline_at__lte=now, deadline_handled_at__isnull=True,
                   status__in=[EscrowStatus.FUNDED, EscrowStatus.RELEASABLE])
           .order_by("deadline_at").values_list("pk", flat=True)[:limit])
    return sum(escrow_check_deadline(actor=Actor.system("deadline_job"), escrow_id=pk, now=now).applied for pk in due)
