"""Compare parsed invoice fields with a milestone's ``proof_requirements``.

Pure Python, no Django. ``run_checks(fields, requirements)`` returns a
JSON-safe dict::

    {"overall": "pass" | "fail" | "incomplete",
     "checks": {
        "amount":     {"status": ..., "expected": "1250.00", "found": "1250.00", "tolerance": "0.00"},
        "currency":   {"status": ..., "expected": "XOF", "found": "XOF", "evidence": "iban:SN"},
        "iban_last4": {"status": ..., "expected": "1234", "found": "1234"},
        "date":       {"status": ..., "expected": "2026-01-01/2026-03-31", "found": "2026-03-04",
                       "date_from": "2026-01-01", "date_to": "2026-03-31"},
        "supplier":   {"status": ..., "expected": "Acme SARL", "found": "ACME S.A.R.L.",
                       "expected_normalized": "acme", "found_normalized": "acme"}}}

Requirement keys (all optional; unknown keys are ignored because other proof
kinds share ``proof_requirements``):

``expected_amount``  string decimal, e.g. ``"1250.00"`` (at most 2 decimals).
``amount_tolerance`` string decimal, an **absolute** amount in the invoice
                     currency (not a percentage); default ``"0.00"``: the
                     invoice must match to the cent.
``currency``         ISO 4217 code, compared case-insensitively.
``iban_last4``       last four IBAN characters, compared case-insensitively.
``supplier``         compared after :func:`proofs.invoice.normalize_supplier`
                     (exact equality of the normalized names, no fuzzy match).
``date_from`` / ``date_to`` ISO dates, inclusive bounds; either may be absent.
                     ``expected`` is an ISO 8601 interval with ``..`` for an
                     open end (``2026-01-01/..``).

Statuses: ``pass``, ``fail``, ``missing`` (required but not found in the
document), ``not_required``. ``overall`` is ``fail`` if any check fails, else
``incomplete`` if any required value is missing, else ``pass`` (also when
nothing is required). Values are strings or ``None``; all arithmetic is
``Decimal``. Malformed requirements raise :class:`InvalidRequirements`
(use :func:`validate_requirements` when a milestone is saved).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from .invoice import InvoiceFields, normalize_supplier

__all__ = ["run_checks", "validate_requirements", "InvalidRequirements", "CHECK_NAMES", "KNOWN_KEYS"]

CENT = Decimal("0.01")
CHECK_NAMES = ("amount", "currency", "iban_last4", "date", "supplier")
KNOWN_KEYS = (
    "expected_amount", "amount_tolerance", "currency", "iban_last4", "supplier", "date_from", "date_to",
)


class InvalidRequirements(ValueError):
    """A ``proof_requirements`` value has the wrong format."""


def _decimal(requirements: Mapping, key: str) -> Decimal | None:
    raw = requirements.get(key)
    if raw is None or raw == "":
        return None
    if isinstance(raw, float):
        raise InvalidRequirements(f"{key} must be a decimal string, not a float.")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise InvalidRequirements(f"{key} is not a decimal: {raw!r}.") from exc
    if not value.is_finite() or value < 0:
        raise InvalidRequirements(f"{key} must be a finite, non-negative decimal.")
    if value != value.quantize(CENT):
        raise InvalidRequirements(f"{key} has more than 2 decimal places: {raw!r}.")
    return value.quantize(CENT)


def _date(requirements: Mapping, key: str) -> dt.date | None:
    raw = requirements.get(key)
    if raw is None or raw == "":
        return None
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError as exc:
        raise InvalidRequirements(f"{key} is not an ISO date (YYYY-MM-DD): {raw!r}.") from exc


def _text(requirements: Mapping, key: str) -> str | None:
    raw = requirements.get(key)
    if raw is None:
        return None
    value = str(raw).strip()
    return value or None


def validate_requirements(requirements: Mapping | None) -> dict:
    """Normalized copy of the invoice-related requirements (strings), or
    :class:`InvalidRequirements`. Unknown keys are left out."""
    requirements = requirements or {}
    out: dict[str, str] = {}
    amount = _decimal(requirements, "expected_amount")
    tolerance = _decimal(requirements, "amount_tolerance")
    if amount is not None:
        out["expected_amount"] = str(amount)
    if tolerance is not None:
        out["amount_tolerance"] = str(tolerance)
    currency = _text(requirements, "currency")
    if currency is not None:
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise InvalidRequirements(f"currency must be an ISO 4217 code: {currency!r}.")
        out["currency"] = currency.upper()
    last4 = _text(requirements, "iban_last4")
    if last4 is not None:
        if not re.fullmatch(r"[A-Za-z0-9]{4}", last4):
            raise InvalidRequirements("iban_last4 must be exactly 4 letters or digits.")
        out["iban_last4"] = last4.upper()
    supplier = _text(requirements, "supplier")
    if supplier is not None:
        if not normalize_supplier(supplier):
            raise InvalidRequirements("supplier is empty once legal suffixes and punctuation are removed.")
        out["supplier"] = supplier
    date_from, date_to = _date(requirements, "date_from"), _date(requirements, "date_to")
    if date_from and date_to and date_from > date_to:
        raise InvalidRequirements("date_from is after date_to.")
    if date_from:
        out["date_from"] = date_from.isoformat()
    if date_to:
        out["date_to"] = date_to.isoformat()
    return out


def _status(required: bool, found, ok: bool) -> str:
    if not required:
        return "not_required"
    if found is None:
        return "missing"
    return "pass" if ok else "fail"


def run_checks(fields: InvoiceFields, requirements: Mapping | None) -> dict:
    """Compare ``fields`` with ``requirements`` (see the module docstring)."""
    req = validate_requirements(requirements)
    checks: dict[str, dict] = {}

    # amount
    expected = Decimal(req["expected_amount"]) if "expected_amount" in req else None
    tolerance = Decimal(req.get("amount_tolerance", "0.00"))
    found = fields.amount.quantize(CENT) if fields.amount is not None else None
    ok = expected is not None and found is not None and abs(found - expected) <= tolerance
    checks["amount"] = {
        "status": _status(expected is not None, found, ok),
        "expected": None if expected is None else str(expected),
        "found": None if found is None else str(found),
        "tolerance": str(tolerance.quantize(CENT)),
    }
    if expected is not None and found is not None:
        checks["amount"]["difference"] = str((found - expected).quantize(CENT))

    # currency
    want = req.get("currency")
    got = fields.currency.upper() if fields.currency else None
    checks["currency"] = {
        "status": _status(want is not None, got, want == got),
        "expected": want,
        "found": got,
        "evidence": fields.currency_evidence,
    }

    # IBAN last 4
    want = req.get("iban_last4")
    got = fields.iban_last4.upper() if fields.iban_last4 else None
    checks["iban_last4"] = {
        "status": _status(want is not None, got, want == got),
        "expected": want,
        "found": got,
    }

    # date window
    date_from = dt.date.fromisoformat(req["date_from"]) if "date_from" in req else None
    date_to = dt.date.fromisoformat(req["date_to"]) if "date_to" in req else None
    got_date = fields.date
    ok = got_date is not None and (date_from is None or got_date >= date_from) and (
        date_to is None or got_date <= date_to
    )
    required = date_from is not None or date_to is not None
    checks["date"] = {
        "status": _status(required, got_date, ok),
        "expected": (
            f"{req.get('date_from', '..')}/{req.get('date_to', '..')}" if required else None
        ),
        "found": None if got_date is None else got_date.isoformat(),
        "date_from": req.get("date_from"),
        "date_to": req.get("date_to"),
    }

    # supplier
    want = req.get("supplier")
    got = fields.supplier or None
    want_n = normalize_supplier(want) if want else None
    got_n = normalize_supplier(got) if got else None
    checks["supplier"] = {
        "status": _status(want is not None, got_n or None, bool(want_n) and want_n == got_n),
        "expected": want,
        "found": got,
        "expected_normalized": want_n,
        "found_normalized": got_n,
    }

    statuses = [c["status"] for c in checks.values()]
    if "fail" in statuses:
        overall = "fail"
    elif "missing" in statuses:
        overall = "incomplete"
    else:
        overall = "pass"
    return {"overall": overall, "checks": checks}
