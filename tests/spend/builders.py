"""Spend objects built through the real services, as the API would."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from spend import services
from spend.models import AllowedPayee, Merchant, SpendCategory, UsageMandate
from tests.factories import UserFactory, actor_for

_codes = itertools.count(1)
SYSTEM = "system:test"


def make_category(code: str | None = None, label: str = "Pharmacy") -> SpendCategory:
    return services.category_create(actor=SYSTEM, code=code or f"cat-{next(_codes)}-{uuid.uuid4().hex[:6]}", label=label)


def make_merchant(*, category: SpendCategory | None = None, certified: bool = False, name: str = "Shop") -> Merchant:
    return services.merchant_create(actor=SYSTEM, name=name, category_id=(category or make_category()).pk,
                                    is_certified=certified)


def make_mandate(*, sender=None, beneficiary=None, total: str = "100.00", currency: str = "USD",
                 expires_in: timedelta = timedelta(days=30), starts_at=None, sector: str = "health",
                 categories=(), merchants=()) -> UsageMandate:
    sender = sender or UserFactory()
    return services.mandate_create(
        actor=actor_for(sender), beneficiary_id=(beneficiary or UserFactory()).pk, total_amount=Decimal(total),
        currency=currency, expires_at=timezone.now() + expires_in, starts_at=starts_at, sector=sector,
        allowed_category_ids=[c.pk for c in categories], allowed_merchant_ids=[m.pk for m in merchants],
    )


def allow_payee(escrow, payee_ref: str = "acct_payee_1", *, daily_limit: str | None = None,
                total_limit: str | None = None) -> AllowedPayee:
    return services.payee_allow(actor=SYSTEM, escrow_id=escrow.pk, payee_ref=payee_ref, label="Payee",
                                daily_limit=Decimal(daily_limit) if daily_limit else None,
                                total_limit=Decimal(total_limit) if total_limit else None)


def purchase_body(mandate, merchant, amount: str = "10.00", **extra) -> dict:
    return {"mandate_id": mandate.pk, "merchant_id": merchant.pk, "amount": amount,
            "currency": mandate.currency, **extra}
