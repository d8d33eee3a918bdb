"""Every change in spend: one function per verb.

Lock orders:

- mandates: the mandate row alone (purchase, expiry, revocation all lock it
  first), so a purchase and the expiry job queue up on the same row and a
  purchase is never accepted once the mandate has expired;
- payee spends (``POST /spend``): the escrow row, then the payee row, then
  the payout is created — the order payments use (escrow before payment).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Iterable

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from escrow.models import EscrowAgreement, EscrowStatus
from escrow.selectors import escrow_lock
from kobatela.accounts.models import User
from kobatela.audit import services as audit
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kobatela.core.money import ZERO
from kobatela.core.rows import lock_owned_row
from kobatela.core.state import transition
from kobatela.core.transactions import service_transaction
from kobatela.events import services as events
from payments import ledger
from payments import services as payment_services
from payments.ledger import mandate_account, merchant_account
from payments.models import LedgerEntry
from spend.models import (
    AllowedPayee,
    AllowedUsage,
    MandateStatus,
    Merchant,
    PayeeSpend,
    Purchase,
    Sector,
    SpendCategory,
    UsageMandate,
)

ONE_ACTIVE_CONSTRAINT = "mandate_one_active_per_sender_beneficiary_currency"
ONE_PAYEE_REF_CONSTRAINT = "allowed_payee_unique_per_escrow"
SPENDABLE_ESCROW_STATUSES = (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)


# --- helpers -------------------------------------------------------------------


def _scoped(actor: Actor | str) -> Actor | None:
    """The actor whose tenancy limits what a service may touch (None: the system, sees all)."""
    return actor if isinstance(actor, Actor) and not actor.sees_all else None


def _violated_constraint(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def _lock_mandate(mandate_id: int, actor: Actor | str) -> UsageMandate:
    """Lock the mandate row; a sender may only lock one it gave (else 404)."""
    return lock_owned_row(UsageMandate.objects.all(), mandate_id, actor=_scoped(actor), owner_field="sender_id",
                          missing=NotFound("mandate_not_found", "No such mandate."))


def _existing(model: type[models.Model], ids: Iterable[int], code: str) -> list:
    wanted = set(ids)
    found = list(model.objects.filter(pk__in=wanted))
    missing = sorted(wanted - {obj.pk for obj in found})
    if missing:
        raise NotFound(code, f"No such {model._meta.verbose_name}: {missing}.", details={"ids": missing})
    return found


def _get_or_404(model: type[models.Model], pk: int | None, code: str, **filters):
    obj = model.objects.filter(pk=pk, **filters).first() if pk is not None else None
    if obj is None:
        raise NotFound(code, f"No such {model._meta.verbose_name}.")
    return obj


def _end(*, actor: Actor | str, mandate: UsageMandate, to: str, now: datetime) -> None:
    """End a locked ACTIVE mandate (EXPIRED or REVOKED): what is left goes back
    to ``psp:clearing``; ``remaining_amount`` keeps the amount given back."""
    transition(mandate, to)
    mandate.ended_at = now
    if mandate.remaining_amount > 0:
        ledger.transfer(movement=f"mandate_release:{mandate.pk}", kind=LedgerEntry.Kind.MANDATE_RELEASE,
                        currency=mandate.currency, amount=mandate.remaining_amount,
                        source=mandate_account(mandate.pk), target=ledger.PSP_CLEARING)
    mandate.save(update_fields=["status", "ended_at", "updated_at"])
    audit.record(actor, f"mandate.{to.lower()}", mandate,
                 {"released": mandate.remaining_amount, "currency": mandate.currency})
    if to == MandateStatus.EXPIRED:
        events.emit(account_id=mandate.sender_id, type="mandate.expired", resource=mandate)


# --- mandates ----------------------------------------------------------------------


def mandate_create(
    *,
    actor: Actor,
    beneficiary_id: int,
    total_amount: Decimal,
    currency: str,
    expires_at: datetime,
    starts_at: datetime | None = None,
    sector: str = Sector.OTHER,
    allowed_category_ids: Iterable[int] = (),
    allowed_merchant_ids: Iterable[int] = (),
) -> UsageMandate:
    """Give a beneficiary a budget: ``total_amount`` moves from ``psp:clearing``
    to ``mandate:<id>`` in the same transaction.

    One ACTIVE mandate per (sender, beneficiary, currency), decided by the
    database's partial unique index (409 ``mandate_already_active``). An
    ACTIVE one already past its expiry does not block: it is expired here first.
    """
    now = clock.now()
    starts_at = starts_at or now
    if expires_at <= now:
        raise ValidationFailed(details={"expires_at": ["Must be in the future."]})
    if starts_at >= expires_at:
        raise ValidationFailed(details={"starts_at": ["Must be before expires_at."]})
    beneficiary = _get_or_404(User, beneficiary_id, "beneficiary_not_found", is_active=True)
    if beneficiary.pk == actor.user_id:
        raise ValidationFailed(details={"beneficiary_id": ["The beneficiary cannot be the sender."]})
    categories = _existing(SpendCategory, allowed_category_ids, "category_not_found")
    merchants = _existing(Merchant, allowed_merchant_ids, "merchant_not_found")

    with service_transaction():
        overdue = (UsageMandate.objects.select_for_update()
                   .filter(sender_id=actor.user_id, beneficiary=beneficiary, currency=currency,
                           status=MandateStatus.ACTIVE, expires_at__lte=now).order_by("pk"))
        for stale in overdue:
            _end(actor=actor, mandate=stale, to=MandateStatus.EXPIRED, now=now)
        try:
            with transaction.atomic():
                mandate = UsageMandate.objects.create(
                    sender_id=actor.user_id, beneficiary=beneficiary, total_amount=total_amount,
                    remaining_amount=total_amount, currency=currency, sector=sector,
                    starts_at=starts_at, expires_at=expires_at,
                )
        except IntegrityError as exc:
            if _violated_constraint(exc) != ONE_ACTIVE_CONSTRAINT:
                raise
            raise Conflict("mandate_already_active",
                           "This beneficiary already has an ACTIVE mandate from you in this currency.",
                           details={"beneficiary_id": beneficiary.pk, "currency": currency}) from None
        mandate.allowed_categories.set(categories)
        mandate.allowed_merchants.set(merchants)
        ledger.transfer(movement=f"mandate_funding:{mandate.pk}", kind=LedgerEntry.Kind.MANDATE_FUNDING,
                        currency=currency, amount=total_amount, source=ledger.PSP_CLEARING,
                        target=mandate_account(mandate.pk))
        audit.record(actor, "mandate.created", mandate, {
            "beneficiary_id": beneficiary.pk, "total_amount": total_amount, "currency": currency, "sector": sector,
            "expires_at": expires_at, "categories": sorted(c.pk for c in categories),
            "merchants": sorted(m.pk for m in merchants),
        })
        events.emit(account_id=mandate.sender_id, type="mandate.created", resource=mandate)
    return mandate


def mandate_revoke(*, actor: Actor | str, mandate_id: int) -> UsageMandate:
    """The sender takes back an ACTIVE mandate; what is left returns to it."""
    with service_transaction():
        mandate = _lock_mandate(mandate_id, actor)
        _end(actor=actor, mandate=mandate, to=MandateStatus.REVOKED, now=timezone.now())
    return mandate


def mandate_expire(*, actor: Actor | str, mandate_id: int, now: datetime | None = None) -> bool:
    """Expire one mandate if it is ACTIVE and due; True when this call did it.

    ``now`` is read after the lock is held, so a purchase that held the lock
    before was checked against an earlier instant, and one that waits for it
    finds the mandate EXPIRED.
    """
    with service_transaction():
        mandate = _lock_mandate(mandate_id, actor)
        now = now or clock.now()
        if mandate.status != MandateStatus.ACTIVE or mandate.expires_at > now:
            return False
        _end(actor=actor, mandate=mandate, to=MandateStatus.EXPIRED, now=now)
    return True


def mandates_expire_due(*, actor: Actor | str, now: datetime | None = None, limit: int = 1000) -> int:
    """Expire every ACTIVE mandate past ``expires_at`` (a sender: only its own).

    The one body of the beat job, ``manage.py expire_mandates`` and
    ``POST /mandates/cleanup``. Each mandate in its own short transaction, so
    purchases wait for one row at a time; returns how many this call expired.
    """
    due = UsageMandate.objects.filter(status=MandateStatus.ACTIVE, expires_at__lte=now or clock.now())
    scoped = _scoped(actor)
    if scoped is not None:
        due = due.filter(sender_id=scoped.user_id)
    ids = list(due.order_by("expires_at", "pk").values_list("pk", flat=True)[:limit])
    return sum(mandate_expire(actor=actor, mandate_id=pk, now=now) for pk in ids)


# --- purchases -----------------------------------------------------------------------


def _is_allowed(mandate: UsageMandate, merchant: Merchant, category: SpendCategory) -> bool:
    """A merchant or category in the mandate's lists, a standing rule of its
    sender, or a certified merchant."""
    if merchant.is_certified:
        return True
    if mandate.allowed_merchants.filter(pk=merchant.pk).exists():
        return True
    if mandate.allowed_categories.filter(pk=category.pk).exists():
        return True
    return AllowedUsage.objects.filter(owner_id=mandate.sender_id).filter(
        models.Q(merchant_id=merchant.pk) | models.Q(category_id=category.pk)
    ).exists()


def purchase_create(
    *,
    actor: Actor | str,
    mandate_id: int,
    merchant_id: int,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
    category_id: int | None = None,
) -> Purchase:
    """Spend from a mandate at a merchant, atomically.

    Under the mandate's lock: the mandate must be ACTIVE and within
    ``starts_at``–``expires_at`` at that instant (which becomes the purchase's
    ``created_at``), the currency its own, the merchant or category allowed
    (403), and the amount within what remains (409). Reaching zero makes the
    mandate CONSUMED. ``category_id`` defaults to the merchant's category.
    A key already used by the mandate's sender returns its purchase unchanged.
    """
    with service_transaction():
        mandate = _lock_mandate(mandate_id, actor)
        earlier = Purchase.objects.filter(sender_id=mandate.sender_id, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if (earlier.mandate_id, earlier.merchant_id, earlier.amount, earlier.currency) != (
                    mandate.pk, merchant_id, amount, currency):
                raise Conflict("purchase_key_reused", "This idempotency key was used for another purchase.")
            earlier.mandate = mandate
            return earlier
        merchant = _get_or_404(Merchant, merchant_id, "merchant_not_found")
        category = (_get_or_404(SpendCategory, category_id, "category_not_found") if category_id is not None
                    else merchant.category)
        if currency != mandate.currency:
            raise ValidationFailed("currency_mismatch", f"This mandate is in {mandate.currency}.",
                                   details={"currency": [f"Must be {mandate.currency}."]})
        now = clock.now()  # read under the lock: the instant this purchase is checked and dated
        if mandate.status != MandateStatus.ACTIVE:
            raise Conflict(f"mandate_is_{mandate.status.lower()}", f"The mandate is {mandate.status}.",
                           details={"status": mandate.status})
        if now >= mandate.expires_at:
            raise Conflict("mandate_expired", "The mandate has expired.", details={"expires_at": mandate.expires_at})
        if now < mandate.starts_at:
            raise Conflict("mandate_not_started", "The mandate cannot be spent yet.",
                           details={"starts_at": mandate.starts_at})
        if not _is_allowed(mandate, merchant, category):
            raise Forbidden("merchant_not_allowed", "This mandate cannot be spent at this merchant or in this category.",
                            details={"merchant_id": merchant.pk, "category_id": category.pk})
        if amount > mandate.remaining_amount:
            raise Conflict("insufficient_budget", "The amount is more than what remains of the mandate.",
                           details={"remaining_amount": str(mandate.remaining_amount), "amount": str(amount)})

        purchase = Purchase.objects.create(
            mandate=mandate, sender_id=mandate.sender_id, merchant=merchant, category=category, amount=amount,
            currency=currency, idempotency_key=idempotency_key, created_at=now,
        )
        ledger.transfer(movement=f"purchase:{purchase.pk}", kind=LedgerEntry.Kind.PURCHASE, currency=currency,
                        amount=amount, source=mandate_account(mandate.pk), target=merchant_account(merchant.pk))
        mandate.remaining_amount -= amount
        fields = ["remaining_amount", "updated_at"]
        if mandate.remaining_amount == ZERO:
            transition(mandate, MandateStatus.CONSUMED)
            mandate.ended_at = now
            fields += ["status", "ended_at"]
        mandate.save(update_fields=fields)
        audit.record(actor, "purchase.created", purchase, {
            "mandate_id": mandate.pk, "merchant_id": merchant.pk, "category_id": category.pk, "amount": amount,
            "currency": currency, "remaining_amount": mandate.remaining_amount,
        })
        if mandate.status == MandateStatus.CONSUMED:
            audit.record(actor, "mandate.consumed", mandate, {"purchase_id": purchase.pk})
            events.emit(account_id=mandate.sender_id, type="mandate.consumed", resource=mandate)
    return purchase


# --- catalogue and allow rules ---------------------------------------------------------


def category_create(*, actor: Actor | str, code: str, label: str) -> SpendCategory:
    try:
        with transaction.atomic():
            category = SpendCategory.objects.create(code=code, label=label)
            audit.record(actor, "spend.category_created", category, {"code": code, "label": label})
    except IntegrityError as exc:
        raise Conflict("category_code_taken", "A category with this code already exists.",
                       details={"code": code}) from exc
    return category


def merchant_create(*, actor: Actor | str, name: str, category_id: int, is_certified: bool = False) -> Merchant:
    category = _get_or_404(SpendCategory, category_id, "category_not_found")
    with transaction.atomic():
        merchant = Merchant.objects.create(name=name, category=category, is_certified=is_certified)
        audit.record(actor, "spend.merchant_created", merchant,
                     {"name": name, "category_id": category.pk, "is_certified": is_certified})
    return merchant


def allowed_usage_create(*, actor: Actor | str, owner_id: int, merchant_id: int | None = None,
                         category_id: int | None = None) -> AllowedUsage:
    """Let every mandate of ``owner`` be spent at a merchant or in a category
    (exactly one). Allowing what is already allowed returns the existing rule."""
    if (merchant_id is None) == (category_id is None):
        raise ValidationFailed(details={"non_field_errors": ["Give exactly one of merchant_id and category_id."]})
    owner = _get_or_404(User, owner_id, "owner_not_found")
    target = ({"merchant": _get_or_404(Merchant, merchant_id, "merchant_not_found")} if merchant_id is not None
              else {"category": _get_or_404(SpendCategory, category_id, "category_not_found")})
    existing = AllowedUsage.objects.filter(owner=owner, **target).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            rule = AllowedUsage.objects.create(owner=owner, **target)
            audit.record(actor, "spend.usage_allowed", rule,
                         {"owner_id": owner.pk, "merchant_id": merchant_id, "category_id": category_id})
    except IntegrityError:  # the same rule, created concurrently
        return AllowedUsage.objects.get(owner=owner, **target)
    return rule


# --- payees of an escrow ------------------------------------------------------------------


def payee_allow(*, actor: Actor | str, escrow_id: int, payee_ref: str, label: str,
                daily_limit: Decimal | None = None, total_limit: Decimal | None = None) -> AllowedPayee:
    escrow = _get_or_404(EscrowAgreement, escrow_id, "escrow_not_found")  # support/admin only: no tenancy
    try:
        with transaction.atomic():
            payee = AllowedPayee.objects.create(escrow=escrow, payee_ref=payee_ref, label=label,
                                                daily_limit=daily_limit, total_limit=total_limit)
            audit.record(actor, "payee.allowed", payee, {"escrow_id": escrow_id, "payee_ref": payee_ref,
                                                          "daily_limit": daily_limit, "total_limit": total_limit})
    except IntegrityError as exc:
        if _violated_constraint(exc) != ONE_PAYEE_REF_CONSTRAINT:
            raise  # e.g. a limit that is not positive: the API's AmountField never lets one through
        raise Conflict("payee_already_allowed", "This payee is already allowed for this escrow.",
                       details={"payee_ref": payee_ref}) from exc
    return payee


def payee_spend(*, actor: Actor | str, escrow_id: int, payee_ref: str, amount: Decimal, idempotency_key: str,
                note: str = "") -> PayeeSpend:
    """Pay an allowed payee from an escrow, within the payee's daily and total
    limits and what the escrow holds and has not promised to another payout.

    The payout is created in this transaction and sent after commit, as a
    milestone's is. A key already used by the escrow's client returns its
    spend unchanged.
    """
    with service_transaction():
        escrow = escrow_lock(escrow_id, _scoped(actor))
        payee = AllowedPayee.objects.select_for_update().filter(escrow=escrow, payee_ref=payee_ref).first()
        if payee is None:
            raise Forbidden("payee_not_allowed", "This payee is not allowed for this escrow.",
                            details={"payee_ref": payee_ref})
        earlier = PayeeSpend.objects.filter(account_id=escrow.client_id, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if (earlier.payee_id, earlier.amount) != (payee.pk, amount):
                raise Conflict("spend_key_reused", "This idempotency key was used for another spend.")
            return earlier
        if escrow.status not in SPENDABLE_ESCROW_STATUSES:
            raise Conflict(f"escrow_is_{escrow.status.lower()}", f"The escrow is {escrow.status}; it cannot be spent.",
                           details={"status": escrow.status})
        today = timezone.now().date()  # USE_TZ with TIME_ZONE UTC: the UTC day
        if payee.spent_on != today:
            payee.spent_today, payee.spent_on = ZERO, today
        if payee.daily_limit is not None and payee.spent_today + amount > payee.daily_limit:
            raise Conflict("daily_limit_exceeded", "The amount is over what this payee may receive today.",
                           details={"daily_limit": str(payee.daily_limit), "spent_today": str(payee.spent_today),
                                    "amount": str(amount)})
        if payee.total_limit is not None and payee.spent_total + amount > payee.total_limit:
            raise Conflict("total_limit_exceeded", "The amount is over what this payee may receive in total.",
                           details={"total_limit": str(payee.total_limit), "spent_total": str(payee.spent_total),
                                    "amount": str(amount)})
        # payment_create_payout refuses what the escrow does not hold unpromised (409 insufficient_escrow_funds).
        payment = payment_services.payment_create_payout(actor=actor, escrow=escrow, amount=amount,
                                                         destination=payee.payee_ref, reason="payee_spend",
                                                         data={"payee_id": payee.pk})
        payee.spent_today += amount
        payee.spent_total += amount
        payee.save(update_fields=["spent_today", "spent_total", "spent_on", "updated_at"])
        spend = PayeeSpend.objects.create(payee=payee, payment=payment, account_id=escrow.client_id, amount=amount,
                                          note=note, idempotency_key=idempotency_key)
        audit.record(actor, "payee.spend", spend, {"escrow_id": escrow.pk, "payee_id": payee.pk,
                                                   "payment_id": payment.pk, "amount": amount, "note": note})
    return spend
