"""IBANs, once: the countries and their lengths, the compact form, the ISO 13616
checksum, the last four characters and the one masked form.

Pure functions, no Django. Used by the invoice parser (``proofs.invoice``: is
this candidate an IBAN?), by masking (``kobatela.core.masking``: hide every
IBAN in logs, audit rows and AI prompts) and by the AI advisor's allowlist
(``iban_last4`` only).

The masked form is ``****`` + the last 4 characters (``****0189``), wherever an
IBAN is shown: logs, audit data, the masked OCR text, the stored
``invoice_iban_masked`` and the admin. One form, because a reviewer compares
the same IBAN across those places. It keeps exactly what the document checks
compare (``iban_last4``) and nothing else: not the length, not the country and
not the check digits, which are computed from the hidden digits.
"""

from __future__ import annotations

import re

__all__ = [
    "IBAN_LENGTHS",
    "iban_compact",
    "iban_is_valid",
    "iban_last4",
    "iban_mod97",
    "mask_iban",
]

#: Countries (and territories) that issue IBANs → the length of their IBANs:
#: the SWIFT IBAN registry, plus the national formats in use in francophone
#: Africa (BCEAO / BEAC zones, Madagascar, Morocco…). ``None``: IBANs are in
#: use but the length is not fixed yet, so only the checksum tells.
IBAN_LENGTHS: dict[str, int | None] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
    # national formats (not all in the SWIFT registry yet)
    "AO": 25, "BF": 28, "BJ": 28, "CF": 27, "CG": 27, "CI": 28, "CM": 27, "CV": 25, "DZ": 26,
    "GA": 27, "GQ": 27, "GW": 25, "IR": 26, "KM": 27, "MA": 28, "MG": 27, "ML": 28, "MZ": 25,
    "NE": 28, "SN": 28, "TD": 27, "TG": 28,
    "CD": None,
}

_SHAPE_RE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_SEPARATORS_RE = re.compile(r"[\s\-]")  # \s includes NBSP, narrow NBSP, thin and figure spaces
_NOT_ALNUM_RE = re.compile(r"[^0-9A-Za-z]")


def iban_compact(s: str) -> str:
    """Upper case, without the spaces and dashes IBANs are written with:
    ``fr76 3000-6000 …`` → ``FR7630006000…``. Other characters stay, so a dot
    or a slash makes it no IBAN."""
    return _SEPARATORS_RE.sub("", s or "").upper()


def iban_mod97(iban: str) -> int:
    """ISO 13616 remainder of a compact IBAN (letters as 10..35); 1 means the checksum holds."""
    rearranged = iban[4:] + iban[:4]
    remainder = 0
    for ch in rearranged:
        remainder = (remainder * (100 if ch.isalpha() else 10) + int(ch, 36)) % 97
    return remainder


def iban_is_valid(s: str) -> bool:
    """ISO 13616 check: shape, the country's length where it is fixed, mod-97 == 1."""
    iban = iban_compact(s)
    if not _SHAPE_RE.fullmatch(iban):
        return False
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    return iban_mod97(iban) == 1


def iban_last4(s: str) -> str | None:
    """The last 4 letters or digits, upper-cased (what the document checks
    compare), or ``None`` when there are fewer than 4."""
    compact = _NOT_ALNUM_RE.sub("", str(s)).upper()
    return compact[-4:] if len(compact) >= 4 else None


def mask_iban(s: str) -> str:
    """``FR76 3000 6000 0112 3456 7890 189`` → ``****0189``.

    Only the last 4 alphanumerics survive, whatever the input: it may be a
    malformed IBAN from a log line. A value of 4 characters or fewer (e.g. an
    already-stored ``iban_last4``) is shown as ``****1234``, so masking twice
    changes nothing; an empty value stays empty, a value with no letter or
    digit becomes ``****``.
    """
    compact = _NOT_ALNUM_RE.sub("", str(s)).upper()
    if not compact:
        return "" if not str(s).strip() else "****"
    return "****" + compact[-4:]
