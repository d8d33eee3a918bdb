"""Money: ``Decimal`` only, two decimals, currencies from the allowed list,
and the conversion to and from a PSP's integer minor units.

Models use :func:`money_field` (``DecimalField(18, 2)``); serializers use
:class:`AmountField` and :class:`CurrencyField`. JSON numbers reach us as
``Decimal`` already (``kobatela.core.parsers.DecimalJSONParser``), so a float
never comes near an amount. PSP adapters and the Stripe webhook parser convert
once, at the boundary, with :func:`to_minor_units` / :func:`from_minor_units`.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, InvalidOperation, localcontext
from typing import Any

from django.conf import settings
from django.db import models
from rest_framework import serializers

MAX_DIGITS = 18
DECIMAL_PLACES = 2
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, **kwargs)


def quantize(amount: Decimal) -> Decimal:
    """Round to cents (banker's rounding) — once, at a boundary."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_EVEN)


def to_decimal(value) -> Decimal | None:
    """Parse a stored or external value (string/int/Decimal) into a Decimal, or None."""
    if value is None or isinstance(value, float):
        return None
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


class AmountField(serializers.DecimalField):
    """A positive amount: string or JSON number, at most 2 decimals and 16 integer digits."""

    default_error_messages = {
        "float": "Send amounts as a string or an exact JSON number.",
    }

    def __init__(self, *, allow_zero: bool = False, **kwargs):
        kwargs.setdefault("max_digits", MAX_DIGITS)
        kwargs.setdefault("decimal_places", DECIMAL_PLACES)
        kwargs.setdefault("min_value", ZERO if allow_zero else CENT)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, float):
            # Only reachable when a caller bypasses our JSON parser (e.g. form data tests).
            self.fail("float")
        return super().to_internal_value(data)


class CurrencyField(serializers.CharField):
    default_error_messages = {"not_allowed": "Currency {value!r} is not accepted; allowed: {allowed}."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("min_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data).upper()
        if value not in settings.ALLOWED_CURRENCIES:
            self.fail("not_allowed", value=value, allowed=", ".join(settings.ALLOWED_CURRENCIES))
        return value


# --- Currencies and minor units ---------------------------------------------

# Stripe's documented decimal rules (https://docs.stripe.com/currencies),
# which real PSPs follow closely. These differ from ISO 4217 in places that
# matter to us: XOF and XAF have no minor unit at the PSP, CDF has two.
# Everything not listed has two decimals. (Stripe's "special cases" ISK, HUF,
# TWD, UGX keep a two-decimal API representation with extra divisibility
# rules; we do not accept those currencies, see ALLOWED_CURRENCIES.)
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")


def normalize_currency(currency: str) -> str:
    """``"usd"`` → ``"USD"``; anything that is not three letters is refused."""
    if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
        raise ValueError(f"Not an ISO 4217 currency code: {currency!r}")
    return currency.upper()


def currency_exponent(currency: str) -> int:
    """How many decimals the PSP uses for ``currency`` (0, 2 or 3)."""
    code = normalize_currency(currency)
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def require_decimal(amount: Any) -> Decimal:
    """``amount`` as a finite Decimal; bool (an int subclass) and float are refused outright, never "converted"."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise TypeError(f"Amounts must be Decimal (or int), not {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"Amount is not finite: {amount!r}")
    return value


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("12.34")`` USD → ``1234``; ``Decimal("1500")`` XOF → ``1500``.

    Raises ``ValueError`` when the amount has more precision than the currency
    allows at the PSP (``Decimal("1500.50")`` XOF, ``Decimal("1.005")`` USD):
    money is never rounded silently on its way out. Trailing zeros are fine
    (``Decimal("1500.00")`` XOF → ``1500``).
    """
    value = require_decimal(amount)
    exponent = currency_exponent(currency)
    with localcontext() as ctx:
        ctx.prec = 64  # far above DecimalField(18, 2); no rounding can happen here
        ctx.traps[Inexact] = True
        scaled = value.scaleb(exponent)
        try:
            integral = scaled.to_integral_exact()
        except (Inexact, InvalidOperation):
            raise ValueError(
                f"{value} {normalize_currency(currency)} cannot be expressed in minor units "
                f"({exponent} decimals at the PSP) without losing precision"
            ) from None
    return int(integral)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """``1234`` USD → ``Decimal("12.34")``; ``1500`` XOF → ``Decimal("1500")``.

    The result carries exactly the currency's PSP decimals; quantize to the
    money field's two decimals where it is stored.
    """
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"Minor units must be int, not {type(minor).__name__}")
    exponent = currency_exponent(currency)
    return Decimal(minor).scaleb(-exponent)
