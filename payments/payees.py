"""Payee verification: payouts wait until their payee may be paid.

A payout's ``payee`` is the account it pays (an escrow's provider). While
that account's ``payout_status`` is not ``verified`` the payout stays
``PENDING`` with ``blocked_reason`` set and no PSP call is made
(:func:`payout_block_reason`, checked by ``payment_execute`` under the
payment lock). When the payee becomes verified (support's
``PATCH /users/{id}``, or the PSP's ``account.verified``),
:func:`payee_on_status_changed` clears the reason and queues each waiting
payout after commit; the payout sweeper also picks up any waiting payout
whose payee is verified, so a lost message or a race with the verification
delays a payout, never loses it. ``payment_execute`` is idempotent
(``payout-<id>`` at the PSP), so a released payout is sent exactly once.

Failed or returned payouts are counted per payee (:func:`payee_record_payout_outcome`);
``PAYEE_PAUSE_AFTER_FAILURES`` in a row (default 3) pause the payee and raise an Alert.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from kobatela.accounts.models import PayoutStatus, User
from kobatela.accounts.services import user_count_payout_outcome, user_set_payout_status
from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.queue import enqueue_on_commit
from kobatela.events import services as events
from payments.models import Payment, PaymentStatus

BLOCKED_NOT_VERIFIED = "payee_not_verified"
BLOCKED_PAUSED = "payee_paused"

# The payment statuses that count as a failed or returned payout for the payee's run of
# failures. (The second wave adds FAILED and RETURNED statuses: add them here.)
# What counts against a payee: the PSP failed the payout, the bank returned it, or it came
# back for good. ERROR (our own send attempts failing: the PSP down) is not the payee's doing.
PAYOUT_FAILURE_STATUSES: tuple[str, ...] = (PaymentStatus.FAILED, PaymentStatus.RETURNED, PaymentStatus.REFUNDED)


class PayeeSerializer(serializers.Serializer):
    """A payee in events (payee.verified / payee.paused): no personal data, no bank data."""

    id = serializers.IntegerField()
    payout_status = serializers.CharField()


def payout_block_reason(payee_status: str | None) -> str:
    """Why a payout to a payee in this status may not leave now ("" when it may)."""
    if payee_status is None or payee_status == PayoutStatus.VERIFIED:
        return ""
    return BLOCKED_PAUSED if payee_status == PayoutStatus.PAUSED else BLOCKED_NOT_VERIFIED


def payee_on_status_changed(*, user: User, previous: str, actor: Actor | str) -> None:
    """An account's payout_status changed (in that transaction): tell the integrators and
    release what waited for a verification."""
    if user.payout_status == PayoutStatus.VERIFIED:
        waiting = list(Payment.objects.select_for_update()
                       .filter(payee_id=user.pk, status=PaymentStatus.PENDING).exclude(blocked_reason="")
                       .order_by("pk").values_list("pk", flat=True))
        Payment.objects.filter(pk__in=waiting).update(blocked_reason="")
        for payment_id in waiting:
            enqueue_on_commit("payments.tasks.execute_payout", payment_id)
        events.emit(account_id=user.pk, type="payee.verified", resource=user, serializer_class=PayeeSerializer,
                    context={"released_payment_ids": waiting})
    elif user.payout_status == PayoutStatus.PAUSED:
        events.emit(account_id=user.pk, type="payee.paused", resource=user, serializer_class=PayeeSerializer)


def payee_record_payout_outcome(*, actor: Actor | str, payment: Payment) -> None:
    """Count a payout's outcome for its payee (in the caller's transaction): a settled
    payout ends the run of failures; the PAYEE_PAUSE_AFTER_FAILURES-th failed or
    returned payout in a row pauses the payee and raises an Alert."""
    if payment.payee_id is None:
        return
    failed = payment.status in PAYOUT_FAILURE_STATUSES
    in_row = user_count_payout_outcome(user_id=payment.payee_id, failed=failed)
    if not failed or in_row < settings.PAYEE_PAUSE_AFTER_FAILURES:
        return
    payee = User.objects.get(pk=payment.payee_id)
    if payee.payout_status == PayoutStatus.PAUSED:
        return
    user_set_payout_status(actor=actor, user_id=payee.pk, payout_status=PayoutStatus.PAUSED,
                           reason=f"{in_row} failed or returned payouts in a row")
    audit.alert_raise(type="payee_paused", severity="critical", actor=actor,
                      message=f"Payee #{payee.pk} paused after {in_row} failed or returned payouts in a row.",
                      data={"user_id": payee.pk, "last_payment_id": payment.pk, "failures_in_row": in_row})
