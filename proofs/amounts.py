"""Amounts written by people: the one parser, for invoice text (``proofs.invoice``)
and for the amounts handed to the AI advisor (``proofs.ai``).

Pure Python, no Django. Money is released against these values, so the rule
is the invoice parser's: **refuse rather than guess**. What is read:

* an optional minus (``-`` or ``−``) and the digits, nothing else: no currency,
  no letters, no ``+``; whitespace around the whole is ignored;
* digits grouped by threes with ONE group separator used throughout: a space
  (also NBSP, narrow NBSP, thin or figure space, tab), an apostrophe (``'`` or
  ``’``), ``.`` or ``,``: ``1 250 000``, ``1'234``, ``1.250.000``,
  ``1,250,000``; or not grouped at all: ``1250000``;
* an optional decimal part of 1 or 2 digits after ``.`` or ``,``, which must
  not be the group separator: ``1 234,56``, ``1.234,56``, ``1,234.56``,
  ``1'234.56``, ``1234.5``, ``0,5``.

Anything else is not an amount (``None``): three decimals (``1234.567``),
groups of the wrong size (``12,34,567``), two group separators
(``1.234 567``), a separator used for both (``1.234.56``), an empty whole part
(``.5``).

``1,234`` and ``1.234`` (one group of three, no decimals) are ambiguous: a
thousand and more, or a bit more than one? They are read as thousands only
when the caller knows the *other* character is the decimal separator (an
invoice whose other amounts prove it); otherwise the value is ``None``.
Several groups (``1.234.567``) can only be thousands.

Values that are already numbers are taken as they are when exact (``Decimal``,
``int``); a ``float`` is refused, like everywhere money is handled here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["SPACES_AS_PLAIN", "WrittenAmount", "parse_amount", "read_amount"]

#: ``str.translate`` table: the space-like characters people (and PDF text
#: layers) put between groups of digits, and tabs, become plain spaces.
SPACES_AS_PLAIN = {ord(c): " " for c in "\u00a0\u202f\u2009\u2007\t"}

_SIGN_RE = re.compile(r"[-−]")
_GROUPED_RE = re.compile(r"(\d{1,3})((?:([ '.,])\d{3})(?:\3\d{3})*)([.,]\d{1,2})?")
_PLAIN_RE = re.compile(r"(\d+)(?:([.,])(\d{1,2}))?")


@dataclass(frozen=True)
class WrittenAmount:
    """What one written amount says.

    ``value`` is ``None`` only for the ambiguous ``1,234`` / ``1.234``: then
    ``ambiguous_sep`` is that separator and :meth:`resolve` needs the
    document's decimal separator. ``decimal_sep`` is the separator this text
    proves to be the decimal one (``1 234,56`` → ``,``; ``1.234.567`` → ``,``),
    for a caller that infers a whole document's convention.
    """

    value: Decimal | None
    decimal_sep: str | None = None
    ambiguous_sep: str | None = None
    as_thousands: Decimal | None = None  # the ambiguous value read as thousands

    def resolve(self, decimal_sep: str | None) -> Decimal | None:
        """The value, with ``decimal_sep`` (known from elsewhere) settling ``1,234``."""
        if self.value is not None:
            return self.value
        if decimal_sep and self.ambiguous_sep and decimal_sep != self.ambiguous_sep:
            return self.as_thousands
        return None


def read_amount(text: str) -> WrittenAmount | None:
    """Read one written amount (see the module docstring), or ``None`` when it is not one."""
    text = text.strip().translate(SPACES_AS_PLAIN).replace("’", "'")
    sign = ""
    if _SIGN_RE.match(text):
        sign, text = "-", text[1:]
    m = _GROUPED_RE.fullmatch(text)
    if m:
        group, decimals = m.group(3), m.group(4)
        if decimals and decimals[0] == group:
            return None
        digits = sign + re.sub(r"\D", "", m.group(1) + m.group(2))
        if decimals:
            return WrittenAmount(Decimal(digits + "." + decimals[1:]), decimal_sep=decimals[0])
        if group in " '":
            return WrittenAmount(Decimal(digits))
        if m.group(2).count(group) >= 2:
            # "1.250.000": several groups, so the separator groups thousands
            return WrittenAmount(Decimal(digits), decimal_sep="," if group == "." else ".")
        return WrittenAmount(None, ambiguous_sep=group, as_thousands=Decimal(digits))
    m = _PLAIN_RE.fullmatch(text)
    if m:
        if m.group(2):
            # "12,50" proves the decimal comma; "12,5" is read as a decimal too but
            # is not taken as proof of the document's convention.
            sep = m.group(2) if len(m.group(3)) == 2 else None
            return WrittenAmount(Decimal(f"{sign}{m.group(1)}.{m.group(3)}"), decimal_sep=sep)
        return WrittenAmount(Decimal(sign + m.group(1)))
    return None


def parse_amount(value: object, *, decimal_sep: str | None = None) -> Decimal | None:
    """A ``Decimal`` from a written amount, an exact number, or ``None``.

    ``decimal_sep`` (``"."`` or ``","``), when the caller knows it, settles
    ``1,234``; without it that value is ``None``.
    """
    if isinstance(value, str):
        written = read_amount(value)
        return None if written is None else written.resolve(decimal_sep)
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        return None  # None, float, anything else
    number = Decimal(value)
    return number if number.is_finite() else None
