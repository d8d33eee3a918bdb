"""Money: ``Decimal`` only, two decimals, currencies from the allowed list.

Models use :func:`money_field` (``DecimalField(18, 2)``); serializers use
:class:`AmountField` and :class:`CurrencyField`. JSON numbers reach us as
``Decimal`` already (``kobatela.core.parsers.DecimalJSONParser``), so a float
never comes near an amount.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

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
