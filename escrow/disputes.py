"""Disputes: a party of an escrow says the deal went wrong; support decides.

Opening a dispute takes the escrow's lock — the lock every approval, the
deadline policy and the inspection job take — so a milestone is either
approved and its payout released before the dispute (the dispute then does
not cover it) or covered by the dispute and frozen, never both.

A dispute covers the milestone named, else every milestone whose money has
not left: not PAID (or RESOLVED), and with no payout on its way (PENDING,
SENT, ERROR or SETTLED). A covered milestone's payout that has not left —
SCHEDULED by an inspection window, FAILED or RETURNED by the PSP — is held
(``payments.holds``: reason ``disputed``). ``amount_held`` is what the
covered milestones still have in the escrow: their held payouts, plus the
amounts of those without a payout (never more than the escrow holds
unpromised).

Resolution (support/admin) splits ``amount_held`` into ``release_amount``
(one payout to the provider) and ``refund_amount`` (one refund to the client
through the PSP); the held payouts are cancelled and the covered milestones
become RESOLVED. The opening party is the client (a sender key) or the
provider (a ``provider`` key, see ``escrow.selectors.escrow_party_of``).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from escrow import hooks
from escrow.models import (
    Dispute,
    DisputeMessage,
    DisputeStatus,
    EscrowAgreement,
    EscrowStatus,
    Milestone,
    MilestoneStatus,
)
from escrow.refunds import refund_create
from escrow.selectors import (
    dispute_escrow_id,
    dispute_lock,
    escrow_lock,
    escrow_lock_as_party,
    escrow_milestones_lock,
    escrow_open_dispute,
    escrow_party_of,
)
from escrow.services import _event, _status_refusal, escrow_close_if_done
from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, ValidationFailed
from kobatela.core.money import ZERO
from kobatela.core.state import transition
from kobatela.core.transactions import service_transaction
from kobatela.events import services as events
from payments import services as payment_services
from payments.models import Payment, PaymentStatus
from payments.selectors import escrow_available_balance

# A payout in one of these has not left: a dispute opened in time holds it.
HELD_PAYMENT_STATUSES = (PaymentStatus.SCHEDULED, PaymentStatus.FAILED, PaymentStatus.RETURNED)
# A payout in one of these is on its way or paid: its milestone is no longer disputable.
GONE_PAYMENT_STATUSES = (PaymentStatus.PENDING, PaymentStatus.SENT, PaymentStatus.ERROR, PaymentStatus.SETTLED)
DISPUTABLE_ESCROW_STATUSES = (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)


def _live_payments(escrow: EscrowAgreement, *, lock: bool = True) -> dict[int, Payment]:
    """The live payout of each milestone of an escrow (locked, after the milestones, unless ``lock=False``)."""
    live = Payment.objects.filter(escrow=escrow, milestone__isnull=False)
    live = (live.select_for_update() if lock else live).exclude(
        status__in=[PaymentStatus.REFUNDED, PaymentStatus.CANCELLED]).order_by("pk")
    return {p.milestone_id: p for p in live}


def _coverable(milestones: list[Milestone], payments: dict[int, Payment]) -> list[Milestone]:
    return [m for m in milestones
            if m.status not in (MilestoneStatus.PAID, MilestoneStatus.RESOLVED)
            and not (m.pk in payments and payments[m.pk].status in GONE_PAYMENT_STATUSES)]


def _amount_held(escrow: EscrowAgreement, covered: list[Milestone], payments: dict[int, Payment]) -> Decimal:
    held = sum((payments[m.pk].amount for m in covered if m.pk in payments), ZERO)
    unpaid = sum((m.amount for m in covered if m.pk not in payments), ZERO)
    return held + min(unpaid, max(escrow_available_balance(escrow), ZERO))


def dispute_coverage(escrow: EscrowAgreement, *, milestone_idx: int | None = None, lock: bool = True,
                     milestones: list[Milestone] | None = None) -> tuple[list[Milestone], Decimal]:
    """What a dispute opened now would cover, and the amount it would hold."""
    if milestones is None:
        milestones = escrow_milestones_lock(escrow) if lock else list(escrow.milestones.order_by("idx"))
    payments = _live_payments(escrow, lock=lock)
    candidates = milestones if milestone_idx is None else [m for m in milestones if m.idx == milestone_idx]
    covered = _coverable(candidates, payments)
    return covered, (_amount_held(escrow, covered, payments) if covered else ZERO)


def escrow_dispute_refusal(escrow: EscrowAgreement, *, party: str | None, disputed: bool,
                           coverable: bool) -> Conflict | None:
    """Why this party cannot open a dispute now (None: it can). ``party`` None is not a party."""
    if party is None:
        return Conflict("not_a_party", "Only the escrow's client or provider opens a dispute.")
    refusal = _status_refusal(escrow, DISPUTABLE_ESCROW_STATUSES, "there is nothing to dispute")
    if refusal is not None:
        return refusal
    if disputed:
        return Conflict("already_disputed", "A dispute is already open on this escrow.")
    if not coverable:
        return Conflict("nothing_to_dispute", "Every milestone's money has already left or been decided.")
    return None


def dispute_open(*, actor: Actor, escrow_id: int, reason: str, milestone_idx: int | None = None) -> Dispute:
    """Open a dispute as the client or the provider; 409 when nothing can be disputed."""
    try:
        with service_transaction():
            escrow = escrow_lock_as_party(escrow_id, actor)
            party = escrow_party_of(actor, escrow)
            milestones = escrow_milestones_lock(escrow)
            if milestone_idx is not None and not any(m.idx == milestone_idx for m in milestones):
                raise ValidationFailed(details={"milestone_idx": [f"The escrow has no milestone {milestone_idx}."]})
            covered, amount_held = dispute_coverage(escrow, milestone_idx=milestone_idx, milestones=milestones)
            refusal = escrow_dispute_refusal(escrow, party=party, disputed=escrow_open_dispute(escrow.pk) is not None,
                                             coverable=amount_held > 0)
            if refusal is not None:
                raise refusal
            with transaction.atomic():
                dispute = Dispute.objects.create(escrow=escrow, opened_by=party, opened_by_label=actor.label,
                                                 reason=reason, amount_held=amount_held)
            dispute.milestones.set(covered)
            _event(escrow, "dispute_opened", actor, {"dispute_id": dispute.pk, "milestones": [m.idx for m in covered],
                                                     "amount_held": amount_held, "opened_by": party})
            events.emit(account_id=escrow.client_id, type="dispute.opened", resource=dispute)
            audit.record(actor, "dispute.opened", dispute,
                         {"escrow_id": escrow.pk, "milestones": [m.idx for m in covered], "amount_held": amount_held,
                          "opened_by": party, "reason": reason})
        return dispute
    except IntegrityError:
        # Two openings raced past the check: the one-open-per-escrow constraint decided.
        raise Conflict("already_disputed", "A dispute is already open on this escrow.") from None


def _author(actor: Actor, escrow: EscrowAgreement) -> str:
    return escrow_party_of(actor, escrow) or actor.label


def dispute_add_message(*, actor: Actor, dispute_id: int, body: str) -> DisputeMessage:
    """A party, support or admin writes to an OPEN dispute (409 ``dispute_is_<status>`` once closed)."""
    escrow_id = dispute_escrow_id(dispute_id, actor)
    with service_transaction():
        escrow = escrow_lock(escrow_id)
        dispute = dispute_lock(dispute_id, actor)
        if dispute.status != DisputeStatus.OPEN:
            raise Conflict(f"dispute_is_{dispute.status.lower()}", f"The dispute is {dispute.status}.")
        message = DisputeMessage.objects.create(dispute=dispute, author=_author(actor, escrow), body=body)
        events.emit(account_id=escrow.client_id, type="dispute.message", resource=dispute,
                    context={"message_id": message.pk, "author": message.author})
        audit.record(actor, "dispute.message", dispute, {"message_id": message.pk, "author": message.author})
    return message


def dispute_withdraw(*, actor: Actor, dispute_id: int) -> Dispute:
    """The party that opened the dispute takes it back: its held payouts may leave again
    (a SCHEDULED one whose window passed leaves at the inspection job's next run)."""
    escrow_id = dispute_escrow_id(dispute_id, actor)
    with service_transaction():
        escrow = escrow_lock(escrow_id)
        dispute = dispute_lock(dispute_id, actor)
        if escrow_party_of(actor, escrow) != dispute.opened_by:
            raise Conflict("not_dispute_opener", "Only the party that opened the dispute withdraws it.",
                           details={"opened_by": dispute.opened_by})
        transition(dispute, DisputeStatus.WITHDRAWN)
        dispute.save(update_fields=["status", "updated_at"])
        _event(escrow, "dispute_withdrawn", actor, {"dispute_id": dispute.pk})
        events.emit(account_id=escrow.client_id, type="dispute.withdrawn", resource=dispute)
        audit.record(actor, "dispute.withdrawn", dispute, {"escrow_id": escrow.pk})
    return dispute


def dispute_resolve(*, actor: Actor, dispute_id: int, release_amount: Decimal, refund_amount: Decimal,
                    note: str) -> Dispute:
    """Support's decision: ``release_amount`` is paid to the provider (one payout),
    ``refund_amount`` goes back to the client (one refund through the PSP); the two add
    up to ``amount_held`` (400 ``split_mismatch``). One transaction: the held payouts
    are cancelled, the covered milestones RESOLVED, the payout and the refund created
    (the refund booked in the ledger now, the payout when it settles), audit and events."""
    escrow_id = dispute_escrow_id(dispute_id, actor)
    if release_amount < 0 or refund_amount < 0:
        raise ValidationFailed(details={"release_amount": ["Must not be negative."]})
    with service_transaction():
        escrow = escrow_lock(escrow_id)
        dispute = dispute_lock(dispute_id, actor)
        if dispute.status != DisputeStatus.OPEN:
            raise Conflict(f"dispute_is_{dispute.status.lower()}", f"The dispute is {dispute.status}.")
        if release_amount + refund_amount != dispute.amount_held:
            raise ValidationFailed("split_mismatch", "release_amount and refund_amount must add up to amount_held.",
                                   details={"amount_held": str(dispute.amount_held),
                                            "sum": str(release_amount + refund_amount)})
        covered_ids = set(dispute.milestones.values_list("pk", flat=True))
        milestones = [m for m in escrow_milestones_lock(escrow) if m.pk in covered_ids]
        payments = _live_payments(escrow)
        for m in milestones:
            payment = payments.get(m.pk)
            if payment is not None and payment.status in HELD_PAYMENT_STATUSES:
                payment_services.payment_cancel(actor=actor, payment_id=payment.pk, reason=f"dispute {dispute.pk} resolved")
            if m.status not in (MilestoneStatus.PAID, MilestoneStatus.RESOLVED):
                transition(m, MilestoneStatus.RESOLVED)
                m.save(update_fields=["status"])
                hooks.milestone_closed(actor=actor, milestone=m, reason=f"dispute {dispute.pk} resolved")
        transition(dispute, DisputeStatus.RESOLVED)
        dispute.release_amount, dispute.refund_amount = release_amount, refund_amount
        dispute.resolution_note, dispute.resolved_by, dispute.resolved_at = note, actor.label, timezone.now()
        dispute.save(update_fields=["status", "release_amount", "refund_amount", "resolution_note", "resolved_by",
                                    "resolved_at", "updated_at"])
        payment = refund = None
        if release_amount > 0:
            payment = payment_services.payment_create_payout(
                actor=actor, escrow=escrow, amount=release_amount, destination=escrow.provider.payout_destination,
                reason="dispute_resolved", data={"dispute_id": dispute.pk})
        if refund_amount > 0:
            refund = refund_create(actor=actor, escrow=escrow, amount=refund_amount, dispute=dispute,
                                   reason=f"dispute {dispute.pk} resolved: {note}"[:2000])
        outcome = {"dispute_id": dispute.pk, "release_amount": release_amount, "refund_amount": refund_amount,
                   "payment_id": payment.pk if payment else None, "refund_id": refund.pk if refund else None}
        _event(escrow, "dispute_resolved", actor, outcome)
        events.emit(account_id=escrow.client_id, type="dispute.resolved", resource=dispute)
        audit.record(actor, "dispute.resolved", dispute, {**outcome, "note": note})
        escrow_close_if_done(actor=actor, escrow=escrow)
    return dispute
