"""Amounts written in words on invoices, French and English: a cross-check only.

Pure Python, no Django. French invoices end with "Arrêtée la présente facture à
la somme de trois millions quatre cent quatre-vingt-douze mille huit cents
francs CFA", English ones with "Amount in words: one million one hundred
sixty-six thousand …". :func:`amount_in_words` finds such a sentence in the
text and returns its value, or ``None`` when there is none or it cannot be
read completely.

The value is never the invoice amount: ``proofs.invoice`` compares it with
the total read from the digits. Agreement confirms the digits (and may settle
the grouping of a total OCR spaced oddly, ``3492 800``); disagreement drops
the amount with a warning. So a misread word can only make an amount
missing, never wrong.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

__all__ = ["amount_in_words", "words_to_number"]

_UNITS = {
    # French
    "zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
    "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15,
    "seize": 16, "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60,
    "septante": 70, "huitante": 80, "octante": 80, "nonante": 90, "quatrevingt": 80, "quatrevingts": 80,
    # English
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_HUNDRED = {"cent", "cents", "hundred"}
_SCALES = {
    "mille": 1000, "mil": 1000, "thousand": 1000,
    "million": 10**6, "millions": 10**6,
    "milliard": 10**9, "milliards": 10**9, "billion": 10**9,
}
_JOINERS = {"et", "and"}
_CENT_WORDS = {"centime", "centimes", "cent", "cents"}
_CURRENCY_WORDS = {
    "franc", "francs", "cfa", "fcfa", "congolais", "euro", "euros", "dollar", "dollars", "us", "ttc", "hors",
    "taxes", "toutes", "comprises", "only", "seulement",
}

_TRIGGER_RE = re.compile(
    r"(?:a\s+la\s+somme\s+de|pour\s+la\s+somme\s+de|montant\s+en\s+lettres|amount\s+in\s+words"
    r"|the\s+sum\s+of|say\s*:|total\s+in\s+words)\s*:?\s*"
)


def _fold(s: str) -> str:
    s = "".join(c for c in unicodedata.normalize("NFKD", s.lower()) if not unicodedata.combining(c))
    return s.replace("\u2019", "'")


def _tokens(text: str) -> list[str]:
    # OCR puts stray marks in a sentence that wraps ("two hundred |" at the
    # page edge): only letters, digits and a full stop count as tokens
    words = re.findall(r"[a-z]+|[\d.]", _fold(text).replace("-", " "))
    out: list[str] = []
    for w in words:
        if w in ("vingt", "vingts") and out and out[-1] == "quatre":
            out[-1] = "quatrevingt"
        else:
            out.append(w)
    return out


def words_to_number(tokens: list[str]) -> tuple[int | None, int]:
    """(value, tokens used) of the number words at the start of ``tokens``.

    ``None`` when the first token is not a number word. The grammar is the
    usual one: units and tens add up, ``cent``/``hundred`` multiplies what is
    below a hundred, ``mille``/``thousand``/``million``/``milliard`` close a
    group. ``quatre-vingt`` is 80.
    """
    total = current = 0
    used = 0
    seen = False
    for i, tok in enumerate(tokens):
        if tok in _UNITS:
            current += _UNITS[tok]
        elif tok in _HUNDRED and current < 10:
            # "huit cents" = 800 but "fifty cents" is not 5000: only units multiply
            current = max(current, 1) * 100
        elif tok in _SCALES:
            total += max(current, 1) * _SCALES[tok]
            current = 0
        elif tok in _JOINERS and seen:
            # "soixante et onze" / "one hundred and five": only inside a number
            if i + 1 < len(tokens) and (tokens[i + 1] in _UNITS or tokens[i + 1] in _HUNDRED):
                continue
            break
        else:
            break
        seen = True
        used = i + 1
    return (total + current if seen else None), used


def amount_in_words(text: str) -> Decimal | None:
    """The amount written in words after "à la somme de" / "amount in words", or ``None``."""
    folded = " ".join(_fold(text).split())
    m = _TRIGGER_RE.search(folded)
    if not m:
        return None
    tokens = _tokens(folded[m.end(): m.end() + 400])
    whole, used = words_to_number(tokens)
    if whole is None:
        return None
    rest = tokens[used:]
    # "... francs CFA" ends it; "... euros et quarante centimes" / "and 50 cents" adds cents
    while rest and rest[0] in _CURRENCY_WORDS:
        rest = rest[1:]
    cents = 0
    if rest and rest[0] in _JOINERS:
        value, n = words_to_number(rest[1:])
        if value is not None and n < len(rest) - 1 and rest[1 + n] in _CENT_WORDS and value < 100:
            cents = value
    return Decimal(whole) + Decimal(cents) / 100
