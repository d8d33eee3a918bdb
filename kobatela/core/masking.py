"""The one masking module of Kobatela: logs, audit data and AI prompts use it.

Pure functions, no Django. Masked forms (documented, stable, tested):

* IBAN   → ``****`` + the last 4 characters, spaces removed, upper-cased:
  ``FR76 3000 6000 0112 3456 7890 189`` → ``****0189``. The length is not kept
  (:func:`kobatela.core.iban.mask_iban`, the one masked form of an IBAN).
* email  → first character of the local part + ``***`` + ``@domain``:
  ``jean.dupont@example.com`` → ``j***@example.com``.
* phone  → ``***`` + the last 2 digits: ``+243 81 234 5678`` → ``***78``.
* our API keys ``kbt_<8 alnum prefix>_<secret>`` → ``kbt_<prefix>_****`` (the
  prefix is the key's public id, the secret is dropped).
* ``whsec_…`` → ``whsec_****``; Stripe ``sk_live_…``/``sk_test_…``/``rk_…`` →
  ``sk_live_****`` etc.; ``Bearer <token>`` → ``Bearer ****``;
  ``Authorization: Basic …`` → ``Authorization: Basic ****``; signature-like
  URL query parameters (``X-Amz-Signature=…``, ``token=…``) → ``…=****``.

:func:`mask_text` finds these inside free text. What it deliberately does NOT
mask: amounts (``1 234,56``, ``12 345 678``), dates (``2024-01-15``,
``01.02.2024``), short references (``INV-2024-001``) and long digit runs that
do not start with ``0`` or ``+`` (a national number written without its trunk
prefix, e.g. ``812345678``, is not recognised as a phone: the price of not
masking amounts). IBANs are recognised when they carry at least 10 digits,
either compact (``FR7630006000…``: country code in capitals and one of the
countries that issue IBANs, :data:`kobatela.core.iban.IBAN_LENGTHS`) or in
groups of 4 separated by single spaces (any two letters, any case).

:func:`mask_data` walks dicts / lists / tuples: values under sensitive keys are
masked by key (see :data:`SECRET_KEY_PARTS`), every other string goes through
:func:`mask_text`, and non-strings (numbers, ``Decimal``, ``None``, dates) are
returned untouched. Dict keys themselves are not rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kobatela.core.iban import IBAN_LENGTHS, mask_iban

__all__ = [
    "MASK",
    "SECRET_KEY_PARTS",
    "mask_data",
    "mask_email",
    "mask_phone",
    "mask_secret",
    "mask_text",
]

MASK = "****"

#: A key whose lower-cased name (``-`` read as ``_``) contains one of these has its value replaced by ``****``.
SECRET_KEY_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "key_hash",
    "private_key",
    "credential",
    "cookie",
)
_IBAN_KEY_PART = "iban"
_EMAIL_KEY_PART = "email"
_PHONE_KEY_PART = "phone"


# --------------------------------------------------------------------------- #
# Single values
# --------------------------------------------------------------------------- #


def mask_secret(value: Any) -> str:
    """Any secret → ``****``."""
    return MASK


def mask_email(s: str) -> str:
    """``jean.dupont@example.com`` → ``j***@example.com``; no ``@`` → ``***``."""
    s = str(s).strip()
    local, sep, domain = s.rpartition("@")
    if not sep or not local or not domain:
        return "" if not s else "***"
    return f"{local[0]}***@{domain}"


def mask_phone(s: str) -> str:
    """``+243 81 234 5678`` → ``***78`` (only the last 2 digits survive)."""
    digits = re.sub(r"\D", "", str(s))
    if not digits:
        return "" if not str(s).strip() else "***"
    return "***" + digits[-2:]


# --------------------------------------------------------------------------- #
# Free text
# --------------------------------------------------------------------------- #

# Order matters: credentials first (they may contain digit runs or "@"),
# then emails, IBANs, phones.

_NOT_MASKED = r"(?![^\s\"',;&]*\*\*\*\*)"
_AUTH_HEADER_RE = re.compile(
    r"(?i)\b(authorization\b[\"']?\s*[:=]\s*[\"']?)(basic|digest|token|apikey|api-key)(\s+)"
    + _NOT_MASKED
    + r"[^\s\"',;]+"
)
_AUTH_HEADER_BARE_RE = re.compile(
    # "Authorization: <credential>" with no scheme.
    r"(?i)\b(authorization\b[\"']?\s*[:=]\s*[\"']?)(?!(?:bearer|basic|digest|token|apikey|api-key)\s)"
    + _NOT_MASKED
    + r"[^\s\"',;]{8,}"
)
_BEARER_RE = re.compile(r"(?i)\b(bearer)(\s+)" + _NOT_MASKED + r"[A-Za-z0-9\-._~+/]{8,}=*")
_SECRET_ASSIGN_RE = re.compile(
    # "password=hunter2", "client_secret: abc", "api_key='...'" in log lines and query strings.
    r"(?i)(?<![A-Za-z0-9])((?:password|passwd|secret|api_key|apikey|access_token|refresh_token)"
    r"[\"']?\s*[:=]\s*[\"']?)"
    + _NOT_MASKED
    + r"[^\s\"',;&]+"
)
_KBT_KEY_RE = re.compile(r"(?<![A-Za-z0-9])(kbt_[A-Za-z0-9]{8})_[A-Za-z0-9_\-]{20,}")
_WHSEC_RE = re.compile(r"(?<![A-Za-z0-9])whsec_[A-Za-z0-9+/=_\-]{6,}")
_STRIPE_RE = re.compile(r"(?<![A-Za-z0-9])((?:sk|rk)_(?:live|test)|rk)_[A-Za-z0-9]{8,}")
_URL_SECRET_PARAM_RE = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|token|"
    r"access_token|api_key|apikey|key|secret|password)=)[^&\s#\"']+"
)
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)
_IBAN_COMPACT_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})([A-Za-z0-9]{11,30})(?![A-Za-z0-9])")
_IBAN_SPACED_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9])([A-Z]{2})(\d{2})((?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])"
)
_PHONE_INTL_RE = re.compile(
    # +CC then groups of digits each after one space, dot or dash; "(0)" allowed.
    # Every group starts with a separator or "(", so there is one way to split.
    r"(?<![\w+])\+\d+(?:[ .\-]?\(\d{1,4}\)\d*|[ .\-]\d+){0,8}(?![\w]|[.,]\d)"
)
_PHONE_LOCAL_RE = re.compile(
    # Trunk-prefixed national numbers: 0 + at least 7 more digits, single separators.
    # Not after ":" either: the seconds and fraction of a time ("18:31:02.481947") are no phone.
    r"(?<![\w#/.,+\-:])0\d(?:[ .\-]?\d){6,13}(?![\w]|[.,/\-:+]\d)"
)
_PHONE_NANP_RE = re.compile(r"(?<![\w#/.,+\-:])(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}(?![\w]|[.,/\-]\d)")
_DATE_RE = re.compile(r"^(?:\d{1,2}[.\-/ ]\d{1,2}[.\-/ ]\d{2,4}|\d{4}[.\-/ ]\d{1,2}[.\-/ ]\d{1,2})$")


def _sub_iban(match: re.Match[str]) -> str:
    country, check, rest = match.group(1), match.group(2), match.group(3)
    if " " not in rest and country.upper() not in IBAN_LENGTHS:
        # Compact form: only IBAN countries (upper-case ids like "AB12CD…" are common).
        return match.group(0)
    tail = ""
    if " " in rest:
        # "... 7890 1890 PAID": a trailing group of letters only is a word, not IBAN.
        groups = rest.split(" ")[1:]
        while groups and not any(c.isdigit() for c in groups[-1]):
            tail = " " + groups.pop() + tail
        rest = "".join(groups)
    body = check + rest
    if not 13 <= len(body) <= 32 or sum(c.isdigit() for c in body) < 10:
        return match.group(0)
    return mask_iban(country + body) + tail


def _sub_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if not 8 <= digits <= 15 or _DATE_RE.match(text):
        return text
    return mask_phone(text)


def mask_text(text: str) -> str:
    """Mask every IBAN, email, phone number and credential found in ``text``."""
    if not text or not isinstance(text, str):
        return text
    # Known key formats first, so their public prefix survives the generic rules.
    text = _KBT_KEY_RE.sub(lambda m: f"{m.group(1)}_{MASK}", text)
    text = _WHSEC_RE.sub(f"whsec_{MASK}", text)
    text = _STRIPE_RE.sub(lambda m: f"{m.group(1)}_{MASK}", text)
    text = _AUTH_HEADER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _AUTH_HEADER_BARE_RE.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _URL_SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _SECRET_ASSIGN_RE.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    text = _IBAN_SPACED_RE.sub(_sub_iban, text)
    text = _IBAN_COMPACT_RE.sub(_sub_iban, text)
    text = _PHONE_INTL_RE.sub(_sub_phone, text)
    text = _PHONE_NANP_RE.sub(_sub_phone, text)
    text = _PHONE_LOCAL_RE.sub(_sub_phone, text)
    return text


# --------------------------------------------------------------------------- #
# Structured data
# --------------------------------------------------------------------------- #


def _key_rule(key: Any):
    if not isinstance(key, str):
        return None
    k = key.lower().replace("-", "_")
    if any(part in k for part in SECRET_KEY_PARTS):
        return mask_secret
    if _IBAN_KEY_PART in k:
        return mask_iban
    if _EMAIL_KEY_PART in k:
        return mask_email
    if _PHONE_KEY_PART in k:
        return mask_phone
    return None


def _apply_rule(rule, value: Any) -> Any:
    if isinstance(value, str):
        return rule(value) if value else value
    if rule is mask_secret:
        # A whole structure under a secret key goes; scalars (counts, flags) stay.
        if isinstance(value, (Mapping, list, tuple, bytes, bytearray)):
            return MASK
        return value
    if isinstance(value, Mapping):
        return mask_data(value)
    if isinstance(value, (list, tuple)):
        masked = [_apply_rule(rule, item) for item in value]
        return tuple(masked) if isinstance(value, tuple) else masked
    return value


def mask_data(obj: Any) -> Any:
    """A masked copy of ``obj`` (dicts, lists, tuples walked recursively)."""
    if isinstance(obj, str):
        return mask_text(obj)
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            rule = _key_rule(key)
            out[key] = _apply_rule(rule, value) if rule is not None else mask_data(value)
        return out
    if isinstance(obj, list):
        return [mask_data(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(mask_data(item) for item in obj)
    return obj
