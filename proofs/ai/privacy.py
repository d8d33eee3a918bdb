"""What the AI advisor may see of a proof: :func:`build_context`, an ALLOWLIST.

Every field that leaves the building is named here and sanitised: no file URL
or storage key, no person or company name (names found in the input are also
scrubbed from free text), no email (not even its domain), phone or full IBAN
(``iban_last4`` only), no GPS coordinates (only the distance to the
geofence). Free text goes through ``kobatela.core.masking.mask_text``, URLs
become ``[url]``, and the OCR text is truncated. Amounts are read with
``proofs.amounts`` (the invoice parser's rules): an amount it cannot read for
sure is left out rather than guessed.

Input shape accepted by :func:`build_context` (unknown keys are ignored)::

    {
      "proof_type": "invoice",            # or "type"
      "content_type": "application/pdf",
      "size_bytes": 48213,                # or "size"
      "milestone": {"label": ..., "amount": Decimal, "currency": "EUR",
                    "proof_requirements": {...}},
      "invoice": {"number", "date", "due_date", "amount" | "total",
                  "currency", "tax_amount", "iban" | "iban_last4"},   # or "extracted"
      "exif": {"captured_at", "distance_to_geofence_m", "within_geofence"},
      "document_checks": {...} | [...],
      "validation_warnings": [...],
      "ocr_text": "...",
      # ignored: file_url, storage_key, provider/client names, emails, ...
    }
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from kobatela.core.iban import iban_last4
from kobatela.core.masking import mask_text
from proofs.amounts import parse_amount

__all__ = ["build_context"]

_URL_RE = re.compile(r"(?i)\b(?:https?|s3|gs|ftp|file)://[^\s\"'<>]+|\bwww\.[^\s\"'<>]+")
_MASKED_EMAIL_RE = re.compile(r"[^\s@]?\*\*\*@[A-Za-z0-9.\-]+")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_SAFE_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_SHORT_STR = 300

# Keys (split on _ - .) that never carry a value out, unless the value is a bool
# ("iban_matches": true is a useful check result; "iban": "FR76..." is not).
_DENY_KEY_TOKENS = frozenset(
    """
    name names fullname firstname lastname surname email mail phone mobile tel iban bic swift
    account url uri link href file filename path storage bucket object address street city
    zip postcode lat latitude lon lng longitude coords coordinates gps location ip user
    username password secret token key holder signature contact provider client customer
    supplier beneficiary sender recipient owner payer payee person signer
    """.split()
)

# Where person / company names live in the input (to scrub them from free text).
_NAME_ROLE_PARTS = (
    "provider", "client", "supplier", "customer", "beneficiary", "holder", "sender",
    "recipient", "payer", "payee", "contact", "owner", "signer", "person", "user", "uploaded_by",
)
_NAME_KEYS = frozenset({"name", "full_name", "first_name", "last_name", "display_name", "legal_name", "username"})
_NAME_STOPWORDS = frozenset(
    "sarl sas sasu sa sprl srl sa. ltd llc inc gmbh bv nv plc co cie et and the de la le les des du von van".split()
)


def _collect_names(obj: Any, parent_is_person: bool = False, out: set[str] | None = None, depth: int = 0) -> set[str]:
    out = set() if out is None else out
    if depth > 6:
        return out
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            k = str(key).lower()
            person_key = any(part in k for part in _NAME_ROLE_PARTS)
            if isinstance(value, str):
                # A bare "name" counts only inside a person-ish parent ("provider": {"name": …}).
                if (k in _NAME_KEYS and (parent_is_person or k != "name")) or (
                    person_key and ("name" in k or k.endswith("holder") or k in _NAME_ROLE_PARTS)
                ):
                    out.add(value)
            else:
                _collect_names(value, parent_is_person=person_key, out=out, depth=depth + 1)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _collect_names(item, parent_is_person=parent_is_person, out=out, depth=depth + 1)
    return out


def _name_patterns(names: set[str]) -> list[re.Pattern[str]]:
    """Whole names first, then each word of 3+ letters (OCR may print "DUPONT Jean")."""
    wholes, words = set(), set()
    for name in names:
        name = " ".join(name.split())
        if len(name) < 3 or "@" in name:
            continue
        wholes.add(name)
        for word in re.split(r"[\s,.;:/()'\"-]+", name):
            if len(word) >= 3 and word.lower() not in _NAME_STOPWORDS and not word.isdigit():
                words.add(word)
    patterns = []
    for text in sorted(wholes, key=len, reverse=True) + sorted(words, key=len, reverse=True):
        parts = [re.escape(p) for p in text.split(" ")]
        patterns.append(re.compile(r"(?i)(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"))
    return patterns


class _Scrubber:
    def __init__(self, names: set[str]) -> None:
        self._patterns = _name_patterns(names)

    def text(self, value: str, limit: int = _SHORT_STR) -> str:
        value = mask_text(value)
        # The masked form "j***@example.com" still names the domain: not for the model.
        value = _MASKED_EMAIL_RE.sub("[email]", value)
        value = _URL_RE.sub("[url]", value)
        for pattern in self._patterns:
            value = pattern.sub("[name]", value)
        return value[:limit]


def _json_scalar(value: Any, scrub: _Scrubber) -> Any:
    """A JSON-safe version of a scalar, or ``_DROP``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else _DROP
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return scrub.text(value)
    return _DROP


_DROP = object()


def _key_denied(key: str) -> bool:
    tokens = re.split(r"[_.\-\s]+", key.lower())
    return any(token in _DENY_KEY_TOKENS for token in tokens) or "url" in key.lower()


def _sanitize(value: Any, scrub: _Scrubber, depth: int = 0) -> Any:
    """Generic structures (checks, warnings, requirements): safe keys, scalars, bounded size."""
    if isinstance(value, Mapping):
        if depth >= 3:
            return _DROP
        out = {}
        for key, item in list(value.items())[:50]:
            if not isinstance(key, str) or not _SAFE_KEY_RE.match(key):
                continue
            if _key_denied(key) and not isinstance(item, bool):
                continue
            clean = _sanitize(item, scrub, depth + 1)
            if clean is not _DROP:
                out[key] = clean
        return out
    if isinstance(value, (list, tuple)):
        if depth >= 3:
            return _DROP
        items = [_sanitize(item, scrub, depth + 1) for item in list(value)[:50]]
        return [item for item in items if item is not _DROP]
    return _json_scalar(value, scrub)


def _first(mapping: Mapping, *keys: str) -> Any:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


def _amount(value: Any) -> str | None:
    amount = parse_amount(value)
    return None if amount is None else str(amount)


def _currency(value: Any) -> str | None:
    if isinstance(value, str) and _CURRENCY_RE.match(value.strip().upper()):
        return value.strip().upper()
    return None


def _iban_last4(invoice: Mapping) -> str | None:
    raw = _first(invoice, "iban_last4", "iban")
    return iban_last4(raw) if isinstance(raw, str) else None


def _date_str(value: Any, scrub: _Scrubber) -> str | None:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return scrub.text(value, 40)
    return None


def _number(value: Any) -> str | int | None:
    """A measure for the prompt, as an exact decimal string rounded to 0.1 (never a float)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value))
    except (ArithmeticError, ValueError):
        return None
    return str(number.quantize(Decimal("0.1"))) if number.is_finite() else None


def _prune(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None and v != {} and v != []}


def build_context(proof: Mapping, *, max_ocr_chars: int = 4000) -> dict:
    """The only data the model sees about a proof (see the module docstring)."""
    scrub = _Scrubber(_collect_names(proof))
    ctx: dict[str, Any] = {}

    size = _first(proof, "size_bytes", "size")
    ctx["proof"] = _prune(
        {
            "type": scrub.text(str(_first(proof, "proof_type", "type", "kind") or ""), 40) or None,
            "content_type": scrub.text(str(proof.get("content_type") or ""), 100) or None,
            "size_bytes": size if isinstance(size, int) and not isinstance(size, bool) else None,
        }
    )

    milestone = proof.get("milestone")
    if isinstance(milestone, Mapping):
        requirements = milestone.get("proof_requirements")
        ctx["milestone"] = _prune(
            {
                "label": scrub.text(str(_first(milestone, "label", "title") or ""), 200) or None,
                "amount": _amount(milestone.get("amount")),
                "currency": _currency(milestone.get("currency")),
                "proof_requirements": _sanitize(requirements, scrub) if requirements is not None else None,
            }
        )

    invoice = _first(proof, "invoice", "extracted", "invoice_fields")
    if isinstance(invoice, Mapping):
        number = _first(invoice, "number", "invoice_number")
        ctx["invoice"] = _prune(
            {
                "number": scrub.text(str(number), 60) if number is not None else None,
                "date": _date_str(_first(invoice, "date", "invoice_date", "issued_on"), scrub),
                "due_date": _date_str(invoice.get("due_date"), scrub),
                "amount": _amount(_first(invoice, "amount", "total", "total_amount")),
                "tax_amount": _amount(_first(invoice, "tax_amount", "vat_amount")),
                "currency": _currency(invoice.get("currency")),
                "iban_last4": _iban_last4(invoice),
            }
        )

    exif = proof.get("exif")
    if isinstance(exif, Mapping):
        within = exif.get("within_geofence")
        ctx["exif"] = _prune(
            {
                "captured_at": _date_str(exif.get("captured_at"), scrub),
                "distance_to_geofence_m": _number(_first(exif, "distance_to_geofence_m", "distance_m")),
                "within_geofence": within if isinstance(within, bool) else None,
            }
        )

    for key in ("document_checks", "validation_warnings"):
        value = proof.get(key)
        if value is not None:
            clean = _sanitize(value, scrub)
            if clean is not _DROP:
                ctx[key] = clean

    ocr = proof.get("ocr_text")
    if isinstance(ocr, str) and ocr.strip():
        # Mask the whole text (bounded) BEFORE truncating, so no IBAN or email
        # is cut into a fragment the masking no longer recognises.
        bounded = ocr[: max(200_000, max_ocr_chars)]
        clean = scrub.text(bounded, limit=len(bounded))
        ctx["ocr_text"] = clean[:max_ocr_chars]
        ctx["ocr_text_truncated"] = len(clean) > max_ocr_chars or len(ocr) > len(bounded)

    return _prune(ctx)

