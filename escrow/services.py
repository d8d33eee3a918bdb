"""Every change of an escrow's state: one function per verb.

Lock order, everywhere: escrow row, then its milestones, then payments — so
two services touching the same escrow queue up instead of deadlocking.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from escrow import hooks, repository
from escrow.actions import (
    APPROVE_FROM,
    DEPOSIT_FROM,
    MARK_DELIVERED_FROM,
    OPEN_MILESTONE_STATUSES,
    REJECT_FROM,
)
from escrow.models import EscrowAgreement, EscrowDeposit, EscrowStatus, Milestone, MilestoneStatus
from escrow.selectors import (
    disputed_milestone_ids,
    escrow_lock,
    escrow_milestones_lock,
    escrow_prefetch_milestones,
    milestone_is_disputed,
    milestone_lock,
    refunds_in_flight,
)
from kobatela.accounts.models import User
from kobatela.audit import services as audit
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, NotFound, ValidationFailed
from kobatela.core.money import ZERO
from kobatela.core.state import transition
from kobatela.core.transactions import service_transaction
from kobatela.events import services as events
from payments import ledger
from payments import services as payment_services
from payments.models import LedgerEntry, Payment, PaymentStatus
from payments.psp import get_provider
from payments.psp.base import FundingSession, FundingSessionRequest
from payments.selectors import COMMITTED_PAYMENT_STATUSES, payment_escrow_id

# --- helpers -------------------------------------------------------------------


def _event(escrow: EscrowAgreement, kind: str, actor: Actor | str, data: dict[str, Any] | None = None) -> None:
    repository.escrow_event_insert(escrow=escrow, kind=kind, actor_label=Actor.label_of(actor), data=data)


def _status_refusal(escrow: EscrowAgreement, allowed: tuple[str, ...], why: str) -> Conflict | None:
    """The 409 ``escrow_is_<state>`` for an escrow not in one of the ``allowed`` states, else None."""
    if escrow.status in allowed:
        return None
    return Conflict(f"escrow_is_{escrow.status.lower()}", f"The escrow is {escrow.status}; {why}.",
                    details={"status": escrow.status})


def _refuse_unless_status(escrow: EscrowAgreement, allowed: tuple[str, ...], why: str) -> None:
    refusal = _status_refusal(escrow, allowed, why)
    if refusal is not None:
        raise refusal


# --- creation ------------------------------------------------------------------


def escrow_create(
    *,
    actor: Actor,
    provider_id: int,
    amount_total: Decimal,
    currency: str,
    deadline_at: datetime,
    milestones: list[dict[str, Any]],
    release_conditions: dict | None = None,
    inspection_hours: int = 0,
) -> EscrowAgreement:
    if deadline_at <= clock.now():
        raise ValidationFailed(details={"deadline_at": ["Must be in the future."]})
    provider = User.objects.filter(pk=provider_id, is_active=True).first()
    if provider is None:
        raise NotFound("provider_not_found", "No such provider account.")
    if provider.pk == actor.user_id:
        raise ValidationFailed(details={"provider_id": ["The provider cannot be the client."]})
    if sum((m["amount"] for m in milestones), ZERO) != amount_total:
        raise ValidationFailed(
            "milestones_total_mismatch",
            "Milestone amounts must add up to amount_total.",
            details={"milestones": [f"They add up to {sum((m['amount'] for m in milestones), ZERO)}, not {amount_total}."]},
        )
    with service_transaction():
        escrow = EscrowAgreement.objects.create(
            client_id=actor.user_id, provider=provider, amount_total=amount_total, currency=currency,
            deadline_at=deadline_at, release_conditions=release_conditions or {}, inspection_hours=inspection_hours,
        )
        Milestone.objects.bulk_create(
            Milestone(
                escrow=escrow, idx=position, label=m["label"], amount=m["amount"], proof_type=m["proof_type"],
                proof_requirements=m.get("proof_requirements") or {},
                geofence_lat=(m.get("geofence") or {}).get("lat"),
                geofence_lng=(m.get("geofence") or {}).get("lng"),
                geofence_radius_m=(m.get("geofence") or {}).get("radius_m"),
            )
            for position, m in enumerate(milestones, start=1)
        )
        _event(escrow, "created", actor, {"amount_total": amount_total, "currency": currency})
        events.emit(account_id=escrow.client_id, type="escrow.created", resource=escrow)
        audit.record(actor, "escrow.created", escrow,
                     {"provider_id": provider.pk, "amount_total": amount_total, "currency": currency,
                      "milestones": len(milestones)})
    return escrow


# --- money in --------------------------------------------------------------------


def escrow_deposit(
    *, actor: Actor | str, escrow_id: int, amount: Decimal, idempotency_key: str, account_id: int | None = None,
    source: str = EscrowDeposit.Source.API, psp_ref: str = "",
) -> EscrowAgreement:
    """Add funds; never beyond the total. Reaching the total makes the escrow FUNDED.

    The deposit row is unique per (account, idempotency key), and per PSP
    reference: a second call with the same key changes nothing and answers
    the escrow as it is. The unique constraints decide, so the first call
    pays no lookup; only a refusal or a conflict looks for an earlier deposit.
    """
    scoped_actor = actor if isinstance(actor, Actor) else None
    try:
        with service_transaction():
            escrow = escrow_lock(escrow_id, scoped_actor)
            account_id = account_id or escrow.client_id
            refusal = _deposit_refusal(escrow, amount)
            if refusal is not None:
                earlier_escrow_id = _earlier_deposit_escrow(account_id, idempotency_key, psp_ref)
                if earlier_escrow_id == escrow.pk:
                    return escrow  # a retry of a deposit already counted, not a new one
                raise refusal if earlier_escrow_id is None else _key_reused()
            deposit = repository.escrow_deposit_insert(escrow=escrow, account_id=account_id, amount=amount,
                                                       idempotency_key=idempotency_key, source=source, psp_ref=psp_ref)
            ledger.transfer(movement=f"deposit:{deposit.pk}", kind=LedgerEntry.Kind.DEPOSIT,
                            currency=escrow.currency, amount=amount,
                            source=ledger.PSP_CLEARING, target=ledger.escrow_account(escrow.pk))
            escrow.amount_funded += amount
            funded = escrow.amount_funded == escrow.amount_total
            _event(escrow, "deposit", actor, {"amount": amount, "source": source})
            if funded:
                transition(escrow, EscrowStatus.FUNDED)
                _event(escrow, "funded", actor, {"amount_funded": escrow.amount_funded})
            repository.escrow_funding_update(escrow, status_changed=funded)
            # The escrow is answered (and shown in its event) with its milestones: read
            # them now, not after audit.record, whose chain lock lasts until the commit.
            escrow_prefetch_milestones(escrow)
            if funded:
                events.emit(account_id=escrow.client_id, type="escrow.funded", resource=escrow)
            audit.record(actor, "escrow.deposit", escrow,
                         {"deposit_id": deposit.pk, "amount": amount, "source": source, "status": escrow.status})
        return escrow
    except IntegrityError:
        # Rolled back: the key (or PSP reference) is already a deposit's.
        earlier_escrow_id = _earlier_deposit_escrow(account_id, idempotency_key, psp_ref)
        if earlier_escrow_id is None:
            raise  # another constraint: a bug, not a retry
        if earlier_escrow_id != escrow_id:
            raise _key_reused() from None
        return EscrowAgreement.objects.get(pk=escrow_id)


def _key_reused() -> Conflict:
    return Conflict("deposit_key_reused", "This idempotency key was used for another deposit.")


def _deposit_refusal(escrow: EscrowAgreement, amount: Decimal) -> Conflict | None:
    refusal = _status_refusal(escrow, DEPOSIT_FROM, "it takes no deposits")
    if refusal is not None:
        return refusal
    remaining = escrow.amount_total - escrow.amount_funded
    if amount > remaining:
        return Conflict("deposit_exceeds_remaining", "The deposit is more than what remains to fund.",
                        details={"remaining": str(remaining), "amount": str(amount)})
    return None


def _earlier_deposit_escrow(account_id: int, idempotency_key: str, psp_ref: str) -> int | None:
    """The escrow of the deposit already made with this key (or PSP reference), if any."""
    earlier = EscrowDeposit.objects.filter(account_id=account_id, idempotency_key=idempotency_key)
    if psp_ref:  # a PSP funding counts once, whichever escrow or account it names
        earlier = earlier | EscrowDeposit.objects.filter(psp_ref=psp_ref)
    return earlier.values_list("escrow_id", flat=True).first()


def escrow_funding_session(*, actor: Actor, escrow_id: int) -> FundingSession:
    """Open a PSP funding session for what remains; the deposit arrives by signed webhook.

    The PSP is called between two short transactions, never under the escrow
    lock (it retries for seconds): the first checks the escrow and reads what
    remains, the second records the session. The PSP's idempotency key names
    the escrow and what it had when asked, so a repeated call opens no second
    session; a deposit landing in between simply makes the session's amount
    more than what remains, and the deposit service refuses the excess.
    """
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor)
        _refuse_unless_status(escrow, (EscrowStatus.DRAFT,), "nothing to fund")
        remaining = escrow.amount_total - escrow.amount_funded
        request = FundingSessionRequest(escrow_id=escrow.pk, amount=remaining, currency=escrow.currency,
                                        idempotency_key=f"funding-{escrow.pk}-{escrow.amount_funded}",
                                        metadata={"escrow_id": escrow.pk})
    session = get_provider().create_funding_session(request)
    with service_transaction():
        escrow = escrow_lock(escrow_id)
        _event(escrow, "funding_session_created", actor, {"session_id": session.session_id, "amount": remaining})
        audit.record(actor, "escrow.funding_session", escrow, {"session_id": session.session_id, "amount": remaining})
    return session


# --- delivery and approval --------------------------------------------------------


def escrow_mark_delivered(*, actor: Actor, escrow_id: int, note: str = "") -> EscrowAgreement:
    """The client (sender) or the provider says the work is delivered: a funded escrow becomes releasable."""
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor, as_provider=True)
        _refuse_unless_status(escrow, MARK_DELIVERED_FROM, "delivery can be marked only on a funded escrow")
        transition(escrow, EscrowStatus.RELEASABLE)
        escrow.delivered_at = timezone.now()
        escrow.save(update_fields=["status", "delivered_at", "updated_at"])
        _event(escrow, "delivered", actor, {"note": note})
        events.emit(account_id=escrow.client_id, type="escrow.releasable", resource=escrow)
        audit.record(actor, "escrow.delivered", escrow, {"note": note})
    return escrow


def milestone_approve(*, actor: Actor | str, escrow: EscrowAgreement, milestone: Milestone, reason: str,
                      amount: Decimal | None = None) -> Payment:
    """Approve a locked milestone of a locked escrow and create its payout.

    Runs inside the caller's transaction (client approval, a proof decision,
    the deadline policy); the payout is executed after commit — or, when the
    escrow has an inspection window, SCHEDULED for ``approved_at +
    inspection_hours`` (``escrow_release_due_inspections`` lets it go).
    ``amount`` below the milestone's is a partial approval: the payout is that
    amount and the rest stays held, refundable. A milestone under an OPEN
    dispute is never approved (409 ``milestone_disputed``): automatic callers
    check :func:`milestone_is_disputed` first and leave it as it is.
    """
    if milestone_is_disputed(milestone.pk):
        raise Conflict("milestone_disputed", "The milestone is under an open dispute.",
                       details={"milestone_idx": milestone.idx})
    amount = milestone.amount if amount is None else amount
    transition(milestone, MilestoneStatus.APPROVED)
    milestone.approved_at = clock.now()
    milestone.save(update_fields=["status", "approved_at"])
    hooks.milestone_closed(actor=actor, milestone=milestone, reason=reason)  # proofs: its pending proofs are superseded
    scheduled_for = (milestone.approved_at + timedelta(hours=escrow.inspection_hours)
                     if escrow.inspection_hours else None)
    payment = payment_services.payment_create_payout(
        actor=actor, escrow=escrow, amount=amount, destination=escrow.provider.payout_destination,
        reason="milestone_approved", milestone=milestone, scheduled_for=scheduled_for, payee=escrow.provider,
        data={"milestone_idx": milestone.idx, **({"partial_of": milestone.amount} if amount != milestone.amount else {})})
    _event(escrow, "milestone_approved", actor, {"idx": milestone.idx, "reason": reason, "payment_id": payment.pk,
                                                 "amount": amount, "scheduled_for": scheduled_for})
    events.emit(account_id=escrow.client_id, type="milestone.approved", resource=escrow,
                context={"milestone_id": milestone.pk, "milestone_idx": milestone.idx})
    audit.record(actor, "milestone.approved", milestone, {"escrow_id": escrow.pk, "idx": milestone.idx, "reason": reason})
    return payment


def milestone_mark_pending_review(*, actor: Actor | str, escrow: EscrowAgreement, milestone: Milestone) -> None:
    """A proof arrived for a locked milestone: it waits for review, and a funded escrow becomes releasable."""
    if milestone.status != MilestoneStatus.PENDING_REVIEW:
        transition(milestone, MilestoneStatus.PENDING_REVIEW)
        milestone.save(update_fields=["status"])
    if escrow.status == EscrowStatus.FUNDED:
        transition(escrow, EscrowStatus.RELEASABLE)
        escrow.save(update_fields=["status", "updated_at"])
        _event(escrow, "releasable", actor, {"idx": milestone.idx})
        events.emit(account_id=escrow.client_id, type="escrow.releasable", resource=escrow)


def milestone_reject(*, actor: Actor | str, escrow: EscrowAgreement, milestone: Milestone, reason: str) -> None:
    """Refuse what was proven for a locked milestone; a new proof may be sent."""
    transition(milestone, MilestoneStatus.REJECTED)
    milestone.save(update_fields=["status"])
    _event(escrow, "milestone_rejected", actor, {"idx": milestone.idx, "reason": reason})
    events.emit(account_id=escrow.client_id, type="milestone.rejected", resource=escrow,
                context={"milestone_id": milestone.pk, "milestone_idx": milestone.idx})
    audit.record(actor, "milestone.rejected", milestone, {"escrow_id": escrow.pk, "idx": milestone.idx, "reason": reason})


def escrow_client_approve(*, actor: Actor, escrow_id: int, note: str = "") -> EscrowAgreement:
    """The client accepts the delivery: every milestone not yet approved is approved and paid out."""
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor)
        _refuse_unless_status(escrow, APPROVE_FROM, "there is nothing to approve")
        disputed = disputed_milestone_ids(escrow.pk)  # their dispute decides, not an approval
        approved = [
            milestone_approve(actor=actor, escrow=escrow, milestone=m, reason="client_approved")
            for m in escrow_milestones_lock(escrow)
            if m.status in OPEN_MILESTONE_STATUSES and m.pk not in disputed
        ]
        if not approved:
            if disputed:
                raise Conflict("nothing_to_approve", "The milestones left are under an open dispute: "
                               "its resolution decides them.", details={"disputed_milestone_ids": sorted(disputed)})
            raise Conflict("nothing_to_approve", "Every milestone is already approved.")
        _event(escrow, "client_approved", actor, {"note": note, "milestones": len(approved)})
        audit.record(actor, "escrow.client_approved", escrow, {"note": note, "milestones": len(approved)})
    return escrow


def escrow_client_reject(*, actor: Actor, escrow_id: int, reason: str) -> EscrowAgreement:
    """The client disputes the delivery: milestones waiting for review are rejected
    (new proofs may be sent) and a releasable escrow goes back to FUNDED."""
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor)
        _refuse_unless_status(escrow, REJECT_FROM, "there is no delivery to reject")
        for m in escrow_milestones_lock(escrow):
            if m.status == MilestoneStatus.PENDING_REVIEW:
                milestone_reject(actor=actor, escrow=escrow, milestone=m, reason=reason)
        transition(escrow, EscrowStatus.FUNDED)
        escrow.delivered_at = None
        escrow.save(update_fields=["status", "delivered_at", "updated_at"])
        _event(escrow, "client_rejected", actor, {"reason": reason})
        audit.record(actor, "escrow.client_rejected", escrow, {"reason": reason})
    return escrow


# --- payouts settle or come back: escrow orchestrates, payments moves the payout -----


def _escrow_of_payment(payment_id: int) -> EscrowAgreement | None:
    """Lock the escrow a payout draws on, if any: lock order is escrow before payment."""
    escrow_id = payment_escrow_id(payment_id)
    return escrow_lock(escrow_id) if escrow_id is not None else None


def escrow_settle_payout(*, actor: Actor | str, payment_id: int, psp_ref: str = "", amount: Decimal | None = None,
                         currency: str | None = None) -> Payment:
    """The PSP paid a payout (its signed webhook). One transaction: the payment
    is SETTLED with its ledger movement out of the escrow (``payment_settle``),
    its milestone PAID, and the escrow RELEASED after its last payout. A
    repeated report changes nothing."""
    with service_transaction():
        escrow = _escrow_of_payment(payment_id)
        payment, settled_now = payment_services.payment_settle(actor=actor, payment_id=payment_id, psp_ref=psp_ref,
                                                               amount=amount, currency=currency)
        if settled_now and escrow is not None:
            _apply_payout_settled(actor=actor, escrow=escrow, payment=payment)
    return payment


def _apply_payout_settled(*, actor: Actor | str, escrow: EscrowAgreement, payment: Payment) -> None:
    escrow.amount_released += payment.amount
    fields = ["amount_released", "updated_at"]
    milestone = milestone_lock(payment.milestone_id) if payment.milestone_id else None
    if milestone is not None:
        transition(milestone, MilestoneStatus.PAID)
        milestone.paid_at = timezone.now()
        milestone.save(update_fields=["status", "paid_at"])
        _event(escrow, "milestone_paid", actor, {"idx": milestone.idx, "payment_id": payment.pk})
    escrow.save(update_fields=fields)
    if milestone is not None:
        events.emit(account_id=escrow.client_id, type="milestone.paid", resource=escrow,
                    context={"milestone_id": milestone.pk, "milestone_idx": milestone.idx})
    escrow_close_if_done(actor=actor, escrow=escrow)


def escrow_close_if_done(*, actor: Actor | str, escrow: EscrowAgreement) -> str | None:
    """A (locked) escrow with nothing left to do ends: every milestone paid or
    resolved by a dispute, no payout or refund on its way, and nothing held.
    It becomes RELEASED if anything was paid to the provider, else REFUNDED.
    Returns the new status, or ``None`` when it stays as it is."""
    if escrow.status not in (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE, EscrowStatus.DRAFT):
        return None
    if escrow.amount_funded - escrow.amount_released - escrow.amount_refunded != 0 or escrow.amount_funded == 0:
        return None
    if escrow.milestones.exclude(status__in=[MilestoneStatus.PAID, MilestoneStatus.RESOLVED]).exists() and \
            escrow.amount_refunded == 0:
        return None
    if escrow.payments.filter(status__in=COMMITTED_PAYMENT_STATUSES).exists() or refunds_in_flight(escrow.pk):
        return None
    released = escrow.amount_released > 0
    transition(escrow, EscrowStatus.RELEASED if released else EscrowStatus.REFUNDED)
    escrow.save(update_fields=["status", "updated_at"])
    if released:
        _event(escrow, "released", actor, {"amount_released": escrow.amount_released,
                                            "amount_refunded": escrow.amount_refunded})
        events.emit(account_id=escrow.client_id, type="escrow.released", resource=escrow)
    else:
        _event(escrow, "refunded", actor, {"amount": escrow.amount_refunded})
        events.emit(account_id=escrow.client_id, type="escrow.refunded", resource=escrow)
    audit.record(actor, f"escrow.{escrow.status.lower()}", escrow,
                 {"amount_released": escrow.amount_released, "amount_refunded": escrow.amount_refunded})
    return escrow.status


def escrow_return_payout(*, actor: Actor | str, payment_id: int, amount: Decimal | None = None,
                         currency: str | None = None, returned: bool = False, failure_code: str = "") -> Payment:
    """A settled payout came back: the money is held again, the milestone waits
    (APPROVED) and a released escrow is releasable again. ``payout.refunded``
    (``returned=False``) ends the payout (REFUNDED; a new one may be created);
    ``payout.returned`` (``returned=True``) makes it RETURNED, to be sent again
    by ``POST /payments/{id}/execute``. A repeated report changes nothing."""
    with service_transaction():
        escrow = _escrow_of_payment(payment_id)
        if returned:
            payment, changed = payment_services.payment_return(actor=actor, payment_id=payment_id, amount=amount,
                                                               currency=currency, failure_code=failure_code)
        else:
            payment, changed = payment_services.payment_refund(actor=actor, payment_id=payment_id, amount=amount,
                                                               currency=currency)
        if changed and escrow is not None:
            _apply_payout_returned(actor=actor, escrow=escrow, payment=payment)
    return payment


def _apply_payout_returned(*, actor: Actor | str, escrow: EscrowAgreement, payment: Payment) -> None:
    escrow.amount_released -= payment.amount
    fields = ["amount_released", "updated_at"]
    if escrow.status == EscrowStatus.RELEASED:
        transition(escrow, EscrowStatus.RELEASABLE)
        fields.append("status")
    if payment.milestone_id:
        milestone = milestone_lock(payment.milestone_id)
        transition(milestone, MilestoneStatus.APPROVED)
        milestone.paid_at = None
        milestone.save(update_fields=["status", "paid_at"])
    escrow.save(update_fields=fields)
    _event(escrow, "payout_refunded", actor, {"payment_id": payment.pk, "amount": payment.amount})
    if "status" in fields:
        events.emit(account_id=escrow.client_id, type="escrow.releasable", resource=escrow)


# --- inspection windows -----------------------------------------------------------------


def escrow_release_inspection(*, actor: Actor | str, payment_id: int) -> bool:
    """Let one SCHEDULED payout whose inspection window has passed leave, under its
    escrow's lock — the lock a dispute takes to open, so the payout either leaves
    before the dispute (which then does not cover it) or stays frozen."""
    with service_transaction():
        escrow = _escrow_of_payment(payment_id)
        if escrow is None:
            return False
        released = payment_services.payment_release_scheduled(actor=actor, payment_id=payment_id)
        if released:
            _event(escrow, "inspection_passed", actor, {"payment_id": payment_id})
    return released


def escrow_release_due_inspections(*, now: datetime | None = None, limit: int = 500) -> int:
    """The beat job's body (and the sandbox test clock's): every SCHEDULED payout whose
    ``scheduled_for`` has passed on the platform's clock leaves, unless a dispute holds it."""
    now = now or clock.now()
    due = (Payment.objects.filter(status=PaymentStatus.SCHEDULED, scheduled_for__lte=now)
           .order_by("scheduled_for", "pk").values_list("pk", flat=True)[:limit])
    actor = Actor.system("inspection_job")
    return sum(escrow_release_inspection(actor=actor, payment_id=pk) for pk in list(due))


# --- cancellation -----------------------------------------------------------------------


def escrow_cancel_refusal(escrow: EscrowAgreement) -> Conflict | None:
    """Why this escrow cannot be cancelled now (None: it can): only a DRAFT with nothing funded."""
    refusal = _status_refusal(escrow, (EscrowStatus.DRAFT,), "only a draft can be cancelled")
    if refusal is None and escrow.amount_funded > 0:
        refusal = Conflict("escrow_has_funds", "Money was deposited: refund it instead of cancelling.",
                           details={"amount_funded": str(escrow.amount_funded)})
    return refusal


def escrow_cancel(*, actor: Actor, escrow_id: int) -> EscrowAgreement:
    """An unfunded DRAFT is CANCELLED (nothing to give back)."""
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor)
        refusal = escrow_cancel_refusal(escrow)
        if refusal is not None:
            raise refusal
        transition(escrow, EscrowStatus.CANCELLED)
        escrow.save(update_fields=["status", "updated_at"])
        _event(escrow, "cancelled", actor)
        events.emit(account_id=escrow.client_id, type="escrow.cancelled", resource=escrow)
        audit.record(actor, "escrow.cancelled", escrow, {})
    return escrow


def _milestone_disputed_hold(payment: Payment) -> str | None:
    """payments.holds: a payout whose milestone is under an OPEN dispute does not leave."""
    return "disputed" if payment.milestone_id and milestone_is_disputed(payment.milestone_id) else None
