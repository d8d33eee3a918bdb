"""Turning a verified raw body into what is stored and processed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kobatela.core.errors import BadRequest

# Provider events are shallow (Stripe's are under 10 levels); deeper is refused
# before it can exhaust the stack while being converted or stored.
MAX_DEPTH = 64

# Headers kept off the stored row: the signatures (STYLE: store without them)
# and anything that could carry a credential.
_UNSTORED_HEADERS = frozenset({"webhook-signature", "stripe-signature", "authorization", "cookie", "x-api-key"})


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON value")


def _storable(value: Any, depth: int = 0) -> Any:
    """The parsed body as it is stored and processed.

    JSON numbers with a fraction were parsed as ``Decimal`` and are kept as
    their exact decimal *string*: a JSON column gives numbers back as floats,
    so a reprocess would otherwise read another amount than the first attempt
    (``AmountField`` accepts strings). NUL characters are refused because
    PostgreSQL's ``jsonb`` cannot store them.
    """
    if depth > MAX_DEPTH:
        raise BadRequest("invalid_event", "The event is nested too deeply.")
    if isinstance(value, dict):
        return {_storable(k, depth + 1): _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v, depth + 1) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str) and "\x00" in value:
        raise BadRequest("invalid_event", "The event contains a NUL character.")
    return value


def decode_body(raw: bytes) -> dict[str, Any]:
    """Parse the verified raw body: 400 ``malformed_json`` or ``invalid_event`` (not an object)."""
    try:
        parsed = json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest("malformed_json", "The webhook body is not valid JSON.") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("invalid_event", "The webhook body must be a JSON object.")
    return _storable(parsed)


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in _UNSTORED_HEADERS}
