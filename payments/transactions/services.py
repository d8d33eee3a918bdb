"""Transactions between accounts, the allowlist and certifications.

A transaction is booked at once: ``user:<sender>`` → ``user:<receiver>`` in
the ledger (kind ``transfer``). ``user:<id>`` accounts track what accounts
moved between each other through Kobatela; they may go negative (the money
itself sits at the PSP).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from kobatela.accounts.models import User
from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kobatela.core.transactions import service_transaction
from payments import ledger
from payments.models import AllowlistEntry, Certification, LedgerEntry, Transaction


def user_account(user_id: int) -> str:
    return f"user:{user_id}"


class ReceiverNotAllowlisted(Forbidden):
    default_code = "receiver_not_allowlisted"
    default_message = "The receiver is not on the sender's allowlist."


def _user_or_404(user_id: int, code: str) -> User:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise NotFound(code, "No such account.")
    return user


def allowlist_add(*, actor: Actor | str, owner_id: int, recipient_id: int) -> AllowlistEntry:
    owner = _user_or_404(owner_id, "owner_not_found")
    recipient = _user_or_404(recipient_id, "recipient_not_found")
    if owner.pk == recipient.pk:
        raise ValidationFailed(details={"recipient_id": ["An account cannot allow-list itself."]})
    try:
        with transaction.atomic():
            entry = AllowlistEntry.objects.create(owner=owner, recipient=recipient)
            audit.record(actor, "allowlist.added", entry, {"owner_id": owner.pk, "recipient_id": recipient.pk})
    except IntegrityError as exc:
        raise Conflict("already_allowlisted", "This recipient is already on the owner's allowlist.") from exc
    return entry


def certification_set(*, actor: Actor | str, user_id: int, level: str) -> Certification:
    """Certify an account at ``level`` (a later call changes the level)."""
    user = _user_or_404(user_id, "user_not_found")
    with transaction.atomic():
        certification, created = Certification.objects.select_for_update().get_or_create(
            user=user, defaults={"level": level})
        previous = None if created else certification.level
        if not created and previous != level:
            certification.level = level
            certification.save(update_fields=["level", "updated_at"])
        audit.record(actor, "certification.set", certification,
                     {"user_id": user.pk, "level": level, "previous_level": previous})
    return certification


def transaction_create(*, actor: Actor | str, sender_id: int, receiver_id: int, amount: Decimal, currency: str,
                       idempotency_key: str) -> Transaction:
    """Book a transfer to a receiver on the sender's allowlist.

    A refusal (403 ``receiver_not_allowlisted``) writes nothing but an Alert,
    and the Alert is written after the refused transaction has rolled back,
    in its own, so it stays. A key already used for this sender returns its
    transaction unchanged.
    """
    sender = _user_or_404(sender_id, "sender_not_found")
    receiver = _user_or_404(receiver_id, "receiver_not_found")
    if sender.pk == receiver.pk:
        raise ValidationFailed(details={"receiver_id": ["The receiver cannot be the sender."]})
    try:
        with service_transaction():
            # The allowlist row is locked so the transfer is booked against the rule as it stands.
            if not AllowlistEntry.objects.select_for_update().filter(owner=sender, recipient=receiver).exists():
                raise ReceiverNotAllowlisted(details={"sender_id": sender.pk, "receiver_id": receiver.pk})
            earlier = Transaction.objects.filter(sender=sender, idempotency_key=idempotency_key).first()
            if earlier is not None:
                if (earlier.receiver_id, earlier.amount, earlier.currency) != (receiver.pk, amount, currency):
                    raise Conflict("transaction_key_reused", "This idempotency key was used for another transaction.")
                return earlier
            txn = Transaction.objects.create(sender=sender, receiver=receiver, amount=amount, currency=currency,
                                             idempotency_key=idempotency_key)
            ledger.transfer(movement=f"transaction:{txn.pk}", kind=LedgerEntry.Kind.TRANSFER, currency=currency,
                            amount=amount, source=user_account(sender.pk), target=user_account(receiver.pk))
            audit.record(actor, "transaction.created", txn, {"sender_id": sender.pk, "receiver_id": receiver.pk,
                                                             "amount": amount, "currency": currency})
    except ReceiverNotAllowlisted:
        audit.alert_raise(
            type="transaction_refused", actor=actor,
            message=f"Transaction from account #{sender.pk} to #{receiver.pk} refused: receiver not allow-listed.",
            data={"sender_id": sender.pk, "receiver_id": receiver.pk, "amount": str(amount), "currency": currency},
        )
        raise
    return txn
