"""Extract invoice fields from plain text (a PDF text layer or OCR output).

Pure Python, no Django. ``parse_invoice(text)`` returns an :class:`InvoiceParse`
with the extracted :class:`InvoiceFields` and a list of warnings
(``{"code": ..., "message": ...}``). Design rule: **a missing value is far
better than a wrong one** — money is released against these fields, so every
heuristic below refuses (returns ``None`` plus a warning) rather than guesses
when the text is ambiguous.

Field rules (documented here because reviewers and support staff rely on them):

amount
    Only amounts that follow a *total label* on the same line (or sit in the
    same column on the line just below a label such as ``Amount Due`` in a
    header row) are considered. Labels are ranked: final-payable labels
    (``Total TTC``, ``Net à payer``, ``Amount due``, ``Montant total``,
    ``Grand total``…) beat a bare ``Total``; sub-totals (``Total HT``,
    ``Sous-total``, ``Subtotal``, ``Total net``) and tax lines (``TVA``,
    ``VAT``, ``Tax``) are never the amount. Among the best-ranked labels the
    largest value wins (a "Reste à payer" after a deposit is smaller than the
    invoice total). The value after the label must be a clean number
    (optionally with a currency and a VAT rate) followed by a column gap or the
    end of the line; OCR junk such as ``1 5OO,00`` is rejected, not repaired.
    An amount written in words (:mod:`proofs.amount_words`) is a cross-check
    only: if it disagrees, the amount is dropped (``amount_words_mismatch``).
    A total with irregular digit groups (``3492 800``) is used only when the
    words or a single sub-total + tax give exactly that number.
    Numbers are read by :mod:`proofs.amounts` (the rules are stated there):
    ``1 234,56`` (space, NBSP, narrow NBSP, thin space), ``1.234,56``,
    ``1,234.56``, ``1'234.56``, ``1234.56``, ``1234,56``, ``1234`` and
    ``1 250 000``. ``1,234`` / ``1.234`` (one group, no decimals) are
    ambiguous (thousands or 3 decimals?) and only read as thousands when the
    document's other amounts prove the decimal separator. If a single
    sub-total and a single tax amount are found and they do not add up to the
    total, the amount is dropped (``amount_inconsistent``): that catches most
    OCR digit misreads. Negative totals (credit notes) are not returned.
currency
    ISO 4217 codes (``USD EUR CDF XOF XAF GBP``…), symbols (``€`` EUR, ``£``
    GBP, ``US$`` USD, ``$`` USD unless a single other dollar ISO code such as
    CAD is present), ``FC`` (CDF, before or after the amount) and
    ``FCFA``/``F CFA``/``CFA``/``francs CFA``. Preference: a currency written
    on the total's value, then on the total's line, then a ``Devise :`` /
    ``Currency:`` label, then the nearest mention by line distance. A CFA
    franc is XOF (BCEAO) or XAF (BEAC): :func:`_resolve_cfa` decides from the
    page (ISO code, IBAN country, central bank, telephone prefix, country or
    town), else from the milestone's expected currency, else ``None`` +
    ``currency_ambiguous``. ``InvoiceFields.currency_evidence`` says what
    decided (``written:€``, ``iban:SN``, ``country:CM``, ``milestone:XAF``…).
date
    ISO ``YYYY-MM-DD`` (and ``YYYY/MM/DD``) are matched *before* anything
    else (``dateutil`` with ``dayfirst=True`` would read 2026-03-04 as 4 March),
    then ``dd.mm.yyyy`` (always day first), ``dd/mm/yyyy`` / ``dd-mm-yyyy``,
    French and English month names (``4 mars 2026``, ``1er avril 2026``,
    ``March 4, 2026``, ``4 March 2026``), and finally ``dateutil`` on the value
    of an explicit date label. A date labelled ``Date``, ``Date de facture``,
    ``Invoice date``… wins, then the first date that is not a due/delivery date
    in reading order; due dates are never returned. Slash dates are read day
    first; in an English document a slash date where both parts are ≤ 12 is
    ``None`` + ``date_ambiguous`` unless another date of the document proves
    the order.
number
    Value after ``Facture N°``, ``N° (de) facture``, ``Numéro de facture``,
    ``Invoice No``/``#``/``Number`` (same line, or the cell below a header);
    failing those, after a bare ``N°``, ``N° :``, ``No.`` starting a cell,
    when the document has exactly one such value. Must contain a digit.
supplier
    A labelled value (``Fournisseur``, ``Supplier``, ``Vendor``, ``Seller``,
    ``Vendeur``, ``Émetteur``, ``From:``…) wins; otherwise the first line (first
    column) near the top that looks like a name: has letters, does not start
    with a digit, is not a title (``FACTURE``, ``INVOICE``…), a label, an
    e-mail/URL/phone or the customer block. Compare suppliers with
    :func:`normalize_supplier`, never raw.
IBAN
    Candidates with or without spaces are validated with the ISO 13616 mod-97
    checksum and the country's registered length (``kobatela.core.iban``).
    Only ``iban_last4`` and ``iban_masked`` are returned; the masked form is
    the one used everywhere, ``****`` + the last four characters
    (``****1234``). The full IBAN is never returned, logged or put in a
    warning message.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from kobatela.core.iban import IBAN_LENGTHS, iban_last4, iban_mod97, mask_iban
from proofs.amount_words import amount_in_words
from proofs.amounts import SPACES_AS_PLAIN, read_amount

__all__ = [
    "InvoiceFields",
    "InvoiceParse",
    "parse_invoice",
    "normalize_supplier",
]

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e15")  # anything larger is not an invoice total (DB: 18 digits, 2 decimals)


@dataclass
class InvoiceFields:
    amount: Decimal | None = None
    currency: str | None = None
    date: dt.date | None = None
    number: str | None = None
    supplier: str | None = None
    iban_last4: str | None = None
    iban_masked: str | None = None
    #: what decided the currency: ``written:<token>`` (``written:€``,
    #: ``written:FC``) or, for a CFA franc, ``iso_code:XOF``, ``iban:SN``,
    #: ``central_bank:BEAC``, ``phone:+237``, ``country:CM``, ``milestone:XAF``.
    currency_evidence: str | None = None

    def to_json(self) -> dict:
        """JSON-safe dict (strings or ``None``)."""
        return {
            "amount": None if self.amount is None else str(self.amount),
            "currency": self.currency,
            "date": None if self.date is None else self.date.isoformat(),
            "number": self.number,
            "supplier": self.supplier,
            "iban_last4": self.iban_last4,
            "iban_masked": self.iban_masked,
            "currency_evidence": self.currency_evidence,
        }


@dataclass
class InvoiceParse:
    fields: InvoiceFields
    warnings: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"fields": self.fields.to_json(), "warnings": [dict(w) for w in self.warnings]}


# ---------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------

def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _fold(s: str) -> str:
    """Lowercase, accent-free copy of ``s`` with the *same length* (so match
    offsets in the folded text are valid in the raw text)."""
    out = []
    for ch in s:
        low = ch.lower()
        if len(low) != 1:
            low = ch
        f = _strip_accents(low)
        if len(f) != 1:
            f = low
        out.append(f)
    return "".join(out)


@dataclass
class _Line:
    idx: int
    raw: str  # original characters (group spaces preserved)
    spaced: str  # group spaces and tabs turned into plain spaces
    folded: str  # lowercase, accent-free, same length


_SEGMENT_GAP = re.compile(r"\S(?:.*?\S)?(?=\s{2,}|\s*$)")


def _segments(text: str) -> list[tuple[int, int, str]]:
    """Column cells of a line: runs separated by 2+ spaces."""
    return [(m.start(), m.end(), m.group(0)) for m in _SEGMENT_GAP.finditer(text)]


def _lines(text: str) -> list[_Line]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    out = []
    for i, raw in enumerate(text.split("\n")):
        raw = raw.rstrip()
        spaced = raw.translate(SPACES_AS_PLAIN)
        out.append(_Line(i, raw, spaced, _fold(spaced)))
    return out


def _next_nonempty(lines: list[_Line], i: int, max_skip: int = 2) -> _Line | None:
    j = i + 1
    while j < len(lines) and j <= i + 1 + max_skip:
        if lines[j].spaced.strip():
            return lines[j]
        j += 1
    return None


def _prev_nonempty(lines: list[_Line], i: int, max_skip: int = 2) -> _Line | None:
    j = i - 1
    while j >= 0 and j >= i - 1 - max_skip:
        if lines[j].spaced.strip():
            return lines[j]
        j -= 1
    return None


def _aligned_cell(header: _Line, start: int, end: int, other: _Line) -> str | None:
    """The cell of ``other`` in the same column as ``header[start:end]``.

    Header rows (``Invoice No   Date   Amount Due``) put values on the next
    line. Cells are matched by column index when both lines have the same
    number of cells (robust to OCR drift), else by horizontal overlap.
    """
    hsegs = _segments(header.spaced)
    osegs = _segments(other.spaced)
    if not hsegs or not osegs:
        return None
    k = next((n for n, (s, e, _) in enumerate(hsegs) if s <= start < e), None)
    if k is None:
        return None
    if len(hsegs) == len(osegs) and len(hsegs) > 1:
        return osegs[k][2]
    if len(hsegs) == 1 and len(osegs) == 1:
        return osegs[0][2]
    hs, he = hsegs[k][0], hsegs[k][1]
    best, best_overlap = None, 0
    for s, e, txt in osegs:
        overlap = min(he, e) - max(hs, s)
        if overlap > best_overlap:
            best, best_overlap = txt, overlap
    return best


def _warn(warnings: list[dict], code: str, message: str) -> None:
    if not any(w["code"] == code for w in warnings):
        warnings.append({"code": code, "message": message})


# ---------------------------------------------------------------------------
# Numbers and amounts
# ---------------------------------------------------------------------------

_AMOUNT = r"(?:\d{1,3}(?:[ '’.,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)(?!\d)(?![.,]\d)"

_ISO_CURRENCIES = (
    "USD EUR CDF XOF XAF GBP CHF CAD AUD JPY CNY INR ZAR NGN KES GHS UGX TZS RWF BIF "
    "MAD TND DZD EGP ETB AOA MZN ZMW MWK MGA GNF SLE LRD GMD MRU CVE STN SCR MUR BWP "
    "NAD SZL LSL SEK NOK DKK PLN CZK HUF RON TRY AED SAR QAR BRL MXN HKD SGD NZD"
).split()

_CURRENCY_TOKEN = (
    r"(?:US\s?\$|USD\s?\$|CA\s?\$|C\$|AU?\$|"
    r"F\.?\s?CFA|FCFA|[Ff]rancs?\s+CFA|CFA(?:\s+[Ff]rancs?)?|"
    + "|".join(_ISO_CURRENCIES)
    + r"|€|£|\$|[Ee]uros?\b)"
)
_CURRENCY_RE = re.compile(r"(?<![A-Za-z])" + _CURRENCY_TOKEN + r"(?![A-Za-z])")

_VALUE_RE = re.compile(
    r"^(?:[\s:=|.…]|[\-–—](?=[\-–—])|[\-–—](?!\s?\d)|(?<=[\-–—])[\-–—])*"  # separators, leaders
    r"(?:\((?P<paren>[^()]{1,24})\)[\s:=|.]*)?"
    r"(?:(?P<rate>\d{1,2}(?:[.,]\d{1,3})?)\s?%[\s:=|]*)?"
    r"(?:\((?P<paren2>[^()]{1,24})\)[\s:=|.]*)?"
    r"(?:(?P<cur1>" + _CURRENCY_TOKEN + r"|FC(?=\s?\d))[\s.:]*)?"
    r"(?:(?<![\-–—])(?P<sign>[-−]))?\s?"
    r"(?P<amt>" + _AMOUNT + r")"
    r"(?:\s?(?P<cur2>" + _CURRENCY_TOKEN + r"|FC\b))?"
    r"\s*[|.,;]?"
    r"(?=\s{2,}|\s*$)",
    re.IGNORECASE,
)

_ANY_AMOUNT_RE = re.compile(r"(?<![\w.,/\-])" + _AMOUNT + r"(?!\s?%)")


def _document_decimal_sep(lines: list[_Line]) -> str | None:
    seps = set()
    for line in lines:
        for m in _ANY_AMOUNT_RE.finditer(line.spaced):
            n = read_amount(m.group(0))
            if n and n.decimal_sep:
                seps.add(n.decimal_sep)
    return seps.pop() if len(seps) == 1 else None


_STRONG_TOTAL = (
    r"montant\s+total\s+t\.?\s?t\.?\s?c\.?|total\s+t\.?\s?t\.?\s?c\.?|montant\s+t\.?\s?t\.?\s?c\.?"
    r"|total\s+toutes\s+taxes\s+comprises|total\s+net\s+a\s+payer|net\s+a\s+payer|total\s+a\s+payer"
    r"|montant\s+(?:net\s+)?a\s+payer|reste\s+a\s+payer|solde\s+a\s+payer|somme\s+a\s+payer"
    r"|montant\s+total|total\s+general|total\s+facture|total\s+de\s+la\s+facture"
    r"|total\s+amount\s+due|total\s+amount\s+payable|total\s+amount|amount\s+due|total\s+due|balance\s+due"
    r"|amount\s+payable|total\s+payable|grand\s+total|invoice\s+total|total\s+invoice\s+amount"
    r"|total\s+(?:incl\.?|including)\s+(?:vat|tax(?:es)?)|total\s+to\s+pay"
)
_SUBTOTAL = (
    r"sous[\s\-]?total|sub[\s\-]?total|total\s+h\.?\s?t\b\.?|total\s+hors\s+tax\w*"
    r"|montant\s+h\.?\s?t\b\.?|total\s+net(?!\s+a\s+payer)\b|net\s+total|total\s+excl\w*\.?(?:\s+(?:vat|tax))?"
    r"|total\s+before\s+tax|total\s+(?:ht|hors)\b"
)
_TAX = (
    r"(?:total\s+|montant\s+)?(?:t\.?v\.?a\.?|vat|sales\s+tax|tax|taxes|impots?)\b"
)
_WEAK_TOTAL = r"(?<!line\s)\btotal\b(?!\s*(?:h\.?t\b|hors|tva|vat|tax|net\b|excl|before|qty|quantit))"

_LABELS_RE = re.compile(
    r"(?<![a-z])(?:(?P<strong>" + _STRONG_TOTAL + r")|(?P<sub>" + _SUBTOTAL + r")|(?P<tax>"
    + _TAX + r")|(?P<weak>" + _WEAK_TOTAL + r"))(?![a-z])"
)


@dataclass
class _AmountCandidate:
    kind: str  # strong | weak | sub | tax
    value: Decimal | None
    line: int
    currencies: list[str]  # raw currency tokens on the value
    negative: bool = False


_EXCLUDING_RE = re.compile(r"excl|hors|\bh\.?t\b|before|sans|\bnet\b|w/o|without|\bpre[\s\-]?tax")


@dataclass
class _Value:
    value: Decimal | None  # None: ambiguous separator
    currencies: list[str]
    negative: bool
    excluding_tax: bool  # "(excl. VAT)", "(HT)" written before the value


def _value_in(text: str, doc_sep: str | None) -> _Value | None:
    """Parse a label's value cell, or ``None`` when it is not a clean amount."""
    m = _VALUE_RE.match(text)
    if not m:
        return None
    n = read_amount(m.group("amt"))
    if n is None:
        return None
    curs: list[str] = []
    excluding = False
    for g in ("paren", "paren2"):
        if m.group(g):
            curs += [c.group(0) for c in _CURRENCY_RE.finditer(m.group(g))]
            excluding |= bool(_EXCLUDING_RE.search(_fold(m.group(g))))
    for g in ("cur1", "cur2"):
        if m.group(g):
            curs.append(m.group(g))
    value = n.resolve(doc_sep)
    if value is not None and value >= MAX_AMOUNT:
        return None  # a reference number or OCR noise, not money
    return _Value(value, curs, bool(m.group("sign")), excluding)


_LOOSE_VALUE_RE = re.compile(
    r"^[\s:=|.]*(?:(?P<cur1>" + _CURRENCY_TOKEN + r")[\s.:]*)?"
    r"(?P<amt>\d{1,4}(?: \d{2,4}){1,4}(?:,\d{2})?)"
    r"(?:\s?(?P<cur2>" + _CURRENCY_TOKEN + r"|FC\b))?\s*[|.,;]?(?=\s{2,}|\s*$)",
    re.IGNORECASE,
)


def _loose_value_in(text: str) -> tuple[Decimal, list[str]] | None:
    """A total whose digit groups are irregular (``3492 800``: OCR moved a
    space). Its value is never used alone (see ``_pick_amount``)."""
    m = _LOOSE_VALUE_RE.match(text)
    if not m:
        return None
    whole, _, cents = m.group("amt").partition(",")
    value = Decimal(whole.replace(" ", "") + ("." + cents if cents else ""))
    return value, [m.group(g) for g in ("cur1", "cur2") if m.group(g)]


_FIELD_HEADER_RE = re.compile(
    r"\bdate\b|invoice|facture|\bn\s?[°º]|\bno\b|client|customer|reference|\bref\b|echeance|\bdue\s+date"
)
_MONEY_RE = re.compile(r"(?<![\w.,/\-])\d{1,3}(?:[ '’.,]?\d{3})*[.,]\d{2}(?!\d)")


def _ends_cell(rest: str) -> bool:
    """The label is alone in its cell: nothing or a column gap after it."""
    return not rest.strip() or rest.startswith("  ")


def _amount_candidates(lines: list[_Line], doc_sep: str | None) -> list[_AmountCandidate]:
    cands: list[_AmountCandidate] = []
    for line in lines:
        for m in _LABELS_RE.finditer(line.folded):
            kind = m.lastgroup
            rest = line.spaced[m.end():]
            parsed = _value_in(rest, doc_sep)
            where = line.idx
            if parsed is None and kind == "strong" and _ends_cell(rest) and _FIELD_HEADER_RE.search(line.folded):
                # header row: "Invoice No   Date   Amount Due" with values below.
                # Only for rows of document fields (never a line-item table
                # header such as "Description  Qty  Montant TTC"), and only when
                # the row below carries a single money-looking value.
                below = _next_nonempty(lines, line.idx, max_skip=1)
                if below is not None and len(_MONEY_RE.findall(below.spaced)) == 1:
                    cell = _aligned_cell(line, m.start(), m.end(), below)
                    if cell:
                        parsed = _value_in(cell, doc_sep)
                        where = below.idx
            if parsed is None:
                if kind in ("strong", "weak"):
                    loose = _loose_value_in(rest)
                    if loose is not None:
                        cands.append(_AmountCandidate("loose", loose[0], where, loose[1]))
                continue
            if parsed.excluding_tax and kind in ("strong", "weak"):
                kind = "sub"
            cands.append(_AmountCandidate(kind, parsed.value, where, parsed.currencies, parsed.negative))
    return cands


def _words_agree(amount: Decimal, in_words: Decimal) -> bool:
    """Words without cents ("… mille francs") confirm the whole part only."""
    if in_words == in_words.to_integral_value():
        return amount.to_integral_value(rounding="ROUND_DOWN") == in_words
    return amount == in_words


def _pick_amount(
    cands: list[_AmountCandidate], warnings: list[dict], in_words: Decimal | None = None
) -> _AmountCandidate | None:
    if not any(c.kind in ("strong", "weak") for c in cands):
        # a total whose digits OCR grouped oddly ("3492 800"): kept only when
        # the amount in words, or sub-total + tax, gives exactly that number
        subs = {c.value for c in cands if c.kind == "sub" and c.value is not None}
        taxes = {c.value for c in cands if c.kind == "tax" and c.value is not None}
        confirm = {in_words} if in_words is not None else set()
        if len(subs) == 1 and len(taxes) == 1:
            confirm.add(next(iter(subs)) + next(iter(taxes)))
        loose = [c for c in cands if c.kind == "loose" and c.value in confirm]
        if len({c.value for c in loose}) == 1:
            return loose[0]
    for rank in ("strong", "weak"):
        pool = [c for c in cands if c.kind == rank]
        if not pool:
            continue
        if any(c.value is None for c in pool):
            _warn(warnings, "amount_ambiguous",
                  "A total uses a separator that could mean thousands or decimals (e.g. 1,234); "
                  "amount left empty.")
            return None
        pool = [c for c in pool if not c.negative]
        if not pool:
            _warn(warnings, "amount_negative", "The total is negative (credit note?); amount left empty.")
            return None
        best = max(pool, key=lambda c: c.value)
        # cross-check with a single sub-total and a single tax amount
        subs = {c.value for c in cands if c.kind == "sub" and c.value is not None and not c.negative}
        taxes = {c.value for c in cands if c.kind == "tax" and c.value is not None and not c.negative}
        if len(subs) == 1 and len(taxes) == 1:
            (s,), (t,) = subs, taxes
            if s + t != best.value and s != best.value:
                _warn(warnings, "amount_inconsistent",
                      "Sub-total plus tax does not equal the total (OCR misread?); amount left empty.")
                return None
        return best
    _warn(warnings, "amount_not_found", "No labelled total amount found.")
    return None


# ---------------------------------------------------------------------------
# Currency
# ---------------------------------------------------------------------------

_DOLLAR_CODES = {"USD", "CAD", "AUD", "NZD", "HKD", "SGD", "LRD", "NAD"}


def _currency_of(token: str) -> str:
    """Raw currency token -> ISO code, or the pseudo-code ``FCFA``."""
    t = re.sub(r"\s", "", token).upper()
    if t in ("US$", "USD$"):
        return "USD"
    if t in ("CA$", "C$"):
        return "CAD"
    if t in ("A$", "AU$"):
        return "AUD"
    if t == "$":
        return "$"
    if t == "€" or t.startswith("EURO"):
        return "EUR"
    if t == "£":
        return "GBP"
    if t == "FC":
        return "CDF"
    if "CFA" in t:
        return "FCFA"
    return t


_CURRENCY_LABEL_RE = re.compile(r"(?<![a-z])(?:devise|monnaie|currency)\s*:?\s*")

#: The two CFA francs: the West African one (XOF, BCEAO, UEMOA) and the Central
#: African one (XAF, BEAC, CEMAC). Both are written "FCFA", "F CFA" or "CFA".
CFA_ZONES: dict[str, str] = {
    **{cc: "XOF" for cc in ("SN", "CI", "ML", "BF", "BJ", "TG", "NE", "GW")},
    **{cc: "XAF" for cc in ("CM", "GA", "CG", "CF", "TD", "GQ")},
}
_CFA_PHONE = {
    "221": "SN", "225": "CI", "223": "ML", "226": "BF", "229": "BJ", "228": "TG", "227": "NE", "245": "GW",
    "237": "CM", "241": "GA", "242": "CG", "236": "CF", "235": "TD", "240": "GQ",
}
#: Countries and main towns as written in addresses (folded: lower case, no accents).
_CFA_PLACES: dict[str, str] = {
    "senegal": "SN", "dakar": "SN", "thies": "SN", "ziguinchor": "SN", "rufisque": "SN",
    "cote d'ivoire": "CI", "cote d ivoire": "CI", "cote divoire": "CI", "ivory coast": "CI", "abidjan": "CI",
    "yamoussoukro": "CI", "bouake": "CI", "mali": "ML", "bamako": "ML", "burkina faso": "BF",
    "ouagadougou": "BF", "bobo-dioulasso": "BF", "benin": "BJ", "cotonou": "BJ", "porto-novo": "BJ",
    "togo": "TG", "lome": "TG", "niger": "NE", "niamey": "NE", "guinee-bissau": "GW", "guinea-bissau": "GW",
    "cameroun": "CM", "cameroon": "CM", "douala": "CM", "yaounde": "CM", "buea": "CM", "gabon": "GA",
    "libreville": "GA", "port-gentil": "GA", "republique du congo": "CG", "congo-brazzaville": "CG",
    "brazzaville": "CG", "pointe-noire": "CG", "centrafrique": "CF", "republique centrafricaine": "CF",
    "central african republic": "CF", "bangui": "CF", "tchad": "TD", "n'djamena": "TD", "ndjamena": "TD",
    "guinee equatoriale": "GQ", "equatorial guinea": "GQ", "malabo": "GQ",
}
_CFA_PLACES_RE = re.compile(
    r"(?<![a-z'\-])(" + "|".join(re.escape(k) for k in sorted(_CFA_PLACES, key=len, reverse=True)) + r")(?![a-z'\-])"
)
_CFA_PHONE_RE = re.compile(r"(?:\+|\b00)\s?(" + "|".join(_CFA_PHONE) + r")(?!\d)")
_CFA_BANK_RE = re.compile(r"\b(bceao|uemoa|beac|cemac)\b")


def _cfa_evidence(lines: list[_Line], iban: str | None) -> list[tuple[str, str, str]]:
    """What the page says about which CFA franc it means, strongest first:
    ``[(tier, detail, "XOF"|"XAF"), ...]``. Tiers, in order: ``iso_code`` (an
    ISO code XOF/XAF written on the page), ``iban`` (the valid IBAN's
    country), ``central_bank`` (BCEAO/UEMOA or BEAC/CEMAC), ``phone`` (an
    international prefix such as +221), ``country`` (a country or main town
    in an address)."""
    found: list[tuple[str, str, str]] = []
    for line in lines:
        for m in re.finditer(r"(?<![A-Za-z])(XOF|XAF)(?![A-Za-z])", line.spaced):
            found.append(("iso_code", m.group(1), m.group(1)))
    if iban and iban[:2] in CFA_ZONES:
        found.append(("iban", iban[:2], CFA_ZONES[iban[:2]]))
    for line in lines:
        for m in _CFA_BANK_RE.finditer(line.folded):
            found.append(("central_bank", m.group(1).upper(), "XOF" if m.group(1) in ("bceao", "uemoa") else "XAF"))
        for m in _CFA_PHONE_RE.finditer(line.folded):
            cc = _CFA_PHONE[m.group(1)]
            found.append(("phone", "+" + m.group(1), CFA_ZONES[cc]))
        for m in _CFA_PLACES_RE.finditer(line.folded):
            cc = _CFA_PLACES[m.group(1)]
            found.append(("country", cc, CFA_ZONES[cc]))
    order = ("iso_code", "iban", "central_bank", "phone", "country")
    return sorted(found, key=lambda e: order.index(e[0]))


def _resolve_cfa(
    lines: list[_Line], iban: str | None, expected: str | None, warnings: list[dict]
) -> tuple[str | None, str | None]:
    """FCFA → (XOF | XAF | None, evidence). The strongest tier of evidence on
    the page decides when it is unanimous; a split tier decides nothing. With
    no evidence on the page, the milestone's expected currency (when it is
    XOF or XAF) decides. Weaker evidence that disagrees becomes a warning."""
    evidence = _cfa_evidence(lines, iban)
    if evidence:
        tier = evidence[0][0]
        top = [e for e in evidence if e[0] == tier]
        codes = {e[2] for e in top}
        if len(codes) == 1:
            code = codes.pop()
            if any(e[2] != code for e in evidence):
                _warn(warnings, "currency_evidence_conflict",
                      f"FCFA read as {code} from the {tier.replace('_', ' ')}, but other details of the page "
                      "point to the other CFA franc.")
            return code, f"{tier}:{top[0][1]}"
        _warn(warnings, "currency_ambiguous",
              f"FCFA can be XOF (West Africa) or XAF (Central Africa) and the page's {tier.replace('_', ' ')} "
              "points to both; currency left empty.")
        return None, None
    if expected in ("XOF", "XAF"):
        return expected, f"milestone:{expected}"
    _warn(warnings, "currency_ambiguous",
          "FCFA can be XOF (West Africa) or XAF (Central Africa) and nothing on the page (ISO code, IBAN, "
          "central bank, telephone prefix, country) says which; currency left empty.")
    return None, None


def _pick_currency(
    lines: list[_Line], total: _AmountCandidate | None, warnings: list[dict],
    *, iban: str | None = None, expected: str | None = None,
) -> tuple[str | None, str | None]:
    """(ISO code or None, evidence). Evidence is ``written:<token>`` for a
    currency written as such (``written:€``, ``written:FC``, ``written:USD``)
    and, for a CFA franc, what decided between XOF and XAF (see
    :func:`_resolve_cfa`)."""
    mentions: list[tuple[int, str, str]] = []  # (line index, code, as written)
    labelled: list[tuple[str, str]] = []
    for line in lines:
        for m in _CURRENCY_RE.finditer(line.spaced):
            mentions.append((line.idx, _currency_of(m.group(0)), m.group(0)))
        for m in _CURRENCY_LABEL_RE.finditer(line.folded):
            c = _CURRENCY_RE.match(line.spaced, m.end())
            if c:
                labelled.append((_currency_of(c.group(0)), c.group(0)))
    all_codes = {c for _, c, _ in mentions}

    def resolve(code: str, written: str) -> tuple[str | None, str | None]:
        token = " ".join(written.split())
        if code == "$":
            others = all_codes & (_DOLLAR_CODES - {"USD"})
            if len(others) == 1 and "USD" not in all_codes:
                return others.pop(), f"written:{token}"
            return "USD", f"written:{token}"
        if code == "FCFA":
            return _resolve_cfa(lines, iban, expected, warnings)
        return code, f"written:{token}"

    def unique(found: list[tuple[str, str]]) -> tuple[str | None, str | None]:
        distinct = {c for c, _ in found}
        if len(distinct) == 1:
            return resolve(*found[0])
        # "$" and "USD" together are the same currency; so are "FCFA" and "XOF"
        resolved = {resolve(c, w) for c, w in {(c, w) for c, w in found}}
        codes = {c for c, _ in resolved}
        if len(codes) == 1 and None not in codes:
            return min(resolved, key=lambda r: r[1] or "")
        _warn(warnings, "currency_ambiguous", "Several currencies appear near the total; currency left empty.")
        return None, None

    if total is not None:
        if total.currencies:
            return unique([(_currency_of(c), c) for c in total.currencies])
        on_line = [(c, w) for i, c, w in mentions if i == total.line]
        if on_line:
            return unique(on_line)
    if labelled:
        return unique(labelled)
    if not mentions:
        _warn(warnings, "currency_not_found", "No currency found.")
        return None, None
    if total is not None:
        best = min(abs(i - total.line) for i, _, _ in mentions)
        return unique([(c, w) for i, c, w in mentions if abs(i - total.line) == best])
    return unique([(c, w) for _, c, w in mentions])


# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------

_MONTHS = {
    # French
    "janvier": 1, "janv": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "avril": 4, "avr": 4,
    "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9, "octobre": 10,
    "novembre": 11, "decembre": 12,
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))

_ISO_DATE_RE = re.compile(r"(?<![\d/.\-])(\d{4})([\-/.])(\d{1,2})\2(\d{1,2})(?![\d/.\-]?\d)")
_NUM_DATE_RE = re.compile(r"(?<![\d/.\-])(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?![\d/.\-]?\d)")
_DMY_NAME_RE = re.compile(
    r"(?<![a-z\d])(\d{1,2})(?:er|st|nd|rd|th|e)?(?:\s+of)?[\s\-]+(" + _MONTH_ALT + r")\.?[\s\-,]+(\d{4})(?!\d)"
)
_MDY_NAME_RE = re.compile(
    r"(?<![a-z])(" + _MONTH_ALT + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)"
)

_FIRST_OCR_RE = re.compile(r"(?<![a-z\d])[li](?=er\s+(?:" + _MONTH_ALT + r")\b)")

_DUE_CONTEXT = re.compile(
    r"echeance|\bdue\b|limite|expir|valid|livraison|delivery|commande|\border\b|payable|pay\s+by"
    r"|paiement\s+avant|a\s+regler|before|avant|period|periode|du\s*$|au\s*$|from\s*$|to\s*$"
)
_INVOICE_DATE_CONTEXT = re.compile(
    r"date|facture|invoice|issued|emis|emission|\ble\s*$|\bon\s*$|dated"
)


@dataclass
class _DateCandidate:
    line: int
    pos: int
    y: int
    m: int
    d: int
    kind: str  # "iso" | "dotted" | "slash" | "name"
    label: str = "none"  # "invoice" | "due" | "none"

    def to_date(self, order: str = "dmy") -> dt.date | None:
        d, m = (self.d, self.m) if order == "dmy" else (self.m, self.d)
        if self.kind not in ("slash",):
            d, m = self.d, self.m
        try:
            value = dt.date(self.y, m, d)
        except ValueError:
            return None
        if not 1990 <= value.year <= 2100:
            return None
        return value


def _year(s: str) -> int:
    y = int(s)
    return y + 2000 if y < 100 else y


def _dates_in(line: _Line) -> list[_DateCandidate]:
    found: list[_DateCandidate] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    for m in _ISO_DATE_RE.finditer(line.spaced):
        found.append(_DateCandidate(line.idx, m.start(), int(m.group(1)), int(m.group(3)), int(m.group(4)), "iso"))
        taken.append(m.span())
    for m in _NUM_DATE_RE.finditer(line.spaced):
        if not free(*m.span()):
            continue
        kind = "dotted" if m.group(2) == "." else "slash"
        found.append(_DateCandidate(line.idx, m.start(), _year(m.group(4)), int(m.group(3)), int(m.group(1)), kind))
        taken.append(m.span())
    # OCR reads "1er" as "ler"/"ier": same length, so offsets stay valid
    folded = _FIRST_OCR_RE.sub("1", line.folded)
    for m in _DMY_NAME_RE.finditer(folded):
        if not free(*m.span()):
            continue
        found.append(_DateCandidate(line.idx, m.start(), int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)), "name"))
        taken.append(m.span())
    for m in _MDY_NAME_RE.finditer(folded):
        if not free(*m.span()):
            continue
        found.append(_DateCandidate(line.idx, m.start(), int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)), "name"))
        taken.append(m.span())
    found.sort(key=lambda c: c.pos)
    return found


def _context_label(context: str) -> str | None:
    context = context.strip()
    if not context:
        return None
    # only the words right before the value matter ("... Date : 4 mars")
    tail = context[-40:]
    if _DUE_CONTEXT.search(tail):
        return "due"
    if _INVOICE_DATE_CONTEXT.search(tail):
        return "invoice"
    return "none"


def _label_dates(lines: list[_Line], cands: list[_DateCandidate]) -> None:
    by_line: dict[int, list[_DateCandidate]] = {}
    for c in cands:
        by_line.setdefault(c.line, []).append(c)
    for idx, lc in by_line.items():
        line = lines[idx]
        segs = _segments(line.spaced)
        prev_end = 0
        for c in lc:
            seg_start = max((s for s, _, _ in segs if s <= c.pos), default=0)
            start = max(seg_start, prev_end)
            label = _context_label(line.folded[start:c.pos])
            if label is None:
                # value-only cell: look for a header cell right above
                above = _prev_nonempty(lines, idx, max_skip=0)
                label = "none"
                if above is not None:
                    cell = _aligned_cell(line, c.pos, c.pos + 1, above)
                    if cell and not _dates_in(_Line(0, cell, cell, _fold(cell))):
                        label = _context_label(_fold(cell)) or "none"
            c.label = label
            prev_end = c.pos + 1


def _language(lines: list[_Line]) -> str | None:
    text = " ".join(line.folded for line in lines)
    fr = len(re.findall(r"\b(?:facture|montant|tva|ttc|date de|fournisseur|echeance|net a payer|total ht|le)\b", text))
    en = len(re.findall(r"\b(?:invoice|amount|vat|tax|due|bill to|subtotal|the|date of|from)\b", text))
    if fr > en:
        return "fr"
    if en > fr:
        return "en"
    return None


def _dateutil_value(text: str) -> dt.date | None:
    """Last resort for a labelled date: dateutil, refusing defaulted parts."""
    if not re.search(r"\d{4}", text) or len(text) > 40:
        return None
    try:
        from dateutil import parser as du
    except ImportError:  # pragma: no cover - python-dateutil is a dependency
        return None
    try:
        a = du.parse(text, dayfirst=True, fuzzy=False, default=dt.datetime(1901, 1, 1))
        b = du.parse(text, dayfirst=True, fuzzy=False, default=dt.datetime(1902, 2, 2))
    except (ValueError, OverflowError, TypeError):
        return None
    if a != b:
        return None  # some component came from the default
    return a.date()


_DATE_LABEL_RE = re.compile(
    r"(?<![a-z])(?:date\s+de\s+(?:la\s+)?facture|date\s+d.emission|invoice\s+date|date\s+of\s+issue"
    r"|issue\s+date|date)\s*:?\s*"
)


def _pick_date(lines: list[_Line], warnings: list[dict]) -> dt.date | None:
    cands: list[_DateCandidate] = []
    for line in lines:
        cands.extend(_dates_in(line))
    _label_dates(lines, cands)

    # Numeric day/month order: dd/mm by default; an impossible reading proves it.
    evidence = set()
    for c in cands:
        if c.kind == "slash":
            if c.d > 12 >= c.m:
                evidence.add("dmy")
            elif c.m > 12 >= c.d:
                evidence.add("mdy")
    order = evidence.pop() if len(evidence) == 1 else None
    language = _language(lines)

    def value(c: _DateCandidate) -> dt.date | None:
        if c.kind != "slash":
            return c.to_date()
        if c.d <= 12 and c.m <= 12 and c.d != c.m:
            if order:
                return c.to_date(order)
            if language == "en" or evidence:
                _warn(warnings, "date_ambiguous",
                      "A date like 04/03/2026 could be day/month or month/day; date left empty.")
                return None
            return c.to_date("dmy")
        if c.m > 12:
            return c.to_date("mdy") if order == "mdy" or language == "en" else None
        return c.to_date("dmy")

    for wanted in ("invoice", "none"):
        for c in cands:
            if c.label == wanted:
                v = value(c)
                if v is not None:
                    return v
                if any(w["code"] == "date_ambiguous" for w in warnings):
                    return None
    # labelled date in a format the regexes do not know: dateutil, carefully
    for line in lines:
        m = _DATE_LABEL_RE.search(line.folded)
        if m:
            cell = _segments(line.spaced[m.end():])
            if cell:
                v = _dateutil_value(cell[0][2])
                if v is not None:
                    return v
    _warn(warnings, "date_not_found", "No invoice date found.")
    return None


# ---------------------------------------------------------------------------
# Invoice number
# ---------------------------------------------------------------------------

_NO = r"(?:n\s?[°º*o]\.?|no\.?|nr\.?|num(?:ero|ber|\.)?|#)"
_NUMBER_LABEL_RE = re.compile(
    r"(?<![a-z])(?:"
    r"(?:facture|invoice|inv\.?|fact\.?)\s*" + _NO + r"(?:\s*de\s+facture)?"
    r"|" + _NO + r"\s*(?:de\s+(?:la\s+)?)?facture"
    r"|numero\s+de\s+(?:la\s+)?facture|invoice\s+(?:id|ref(?:erence)?)|ref(?:erence)?\s+(?:de\s+la\s+)?facture"
    r")(?![a-z])(?:\s?[:#.])?"
)
_NUMBER_VALUE_RE = re.compile(r"[:#\s.]*([A-Za-z0-9][A-Za-z0-9\-/_.]{0,39})")


def _number_from(text: str) -> str | None:
    m = _NUMBER_VALUE_RE.match(text)
    if not m:
        return None
    value = m.group(1).rstrip(".-/_")
    if not re.search(r"\d", value) or len(value) > 32:
        return None
    return value


# "N° : DGC-26-0091", "No. 2026-117", "Nº 457" alone at the start of a cell (the
# cell's own words tell it is not an account, tax or phone number)
_BARE_NUMBER_LABEL_RE = re.compile(r"^(?:n\s?[°*]|n\s?o(?![a-z])\.?)\s*:?\s*")  # "Nº" folds to "no"


def _pick_number(lines: list[_Line], warnings: list[dict]) -> str | None:
    value = _labelled_number(lines)
    if value is None:
        value = _bare_number(lines)
    if value is None:
        _warn(warnings, "number_not_found", "No invoice number found.")
    return value


def _bare_number(lines: list[_Line]) -> str | None:
    found = []
    for line in lines:
        for s, _, seg in _segments(line.spaced):
            m = _BARE_NUMBER_LABEL_RE.match(line.folded[s:])
            if m and m.end() < len(seg):
                value = _number_from(seg[m.end():])
                if value is not None:
                    found.append(value)
    distinct = list(dict.fromkeys(found))
    return distinct[0] if len(distinct) == 1 else None


def _labelled_number(lines: list[_Line]) -> str | None:
    for line in lines:
        for m in _NUMBER_LABEL_RE.finditer(line.folded):
            rest = line.spaced[m.end():]
            cell = _segments(rest)
            value = _number_from(cell[0][2]) if cell and rest[: cell[0][0]].strip(" :#.") == "" else None
            if value is None and _ends_cell(rest):
                below = _next_nonempty(lines, line.idx, max_skip=1)
                if below is not None:
                    cell_text = _aligned_cell(line, m.start(), m.end(), below)
                    if cell_text:
                        value = _number_from(cell_text)
            if value is not None:
                return value
    return None


# ---------------------------------------------------------------------------
# Supplier
# ---------------------------------------------------------------------------

_SUPPLIER_LABEL_RE = re.compile(
    r"^(?:fournisseur|supplier|vendor|seller|vendeur|emetteur|emis\s+par|issued\s+by|prestataire"
    r"|raison\s+sociale|from\s*:|company\s*:|societe\s*:)\s*:?\s*"
)
_TITLE_WORDS = (
    r"facture|invoice|proforma|pro[\s\-]forma|devis|quotation|quote|receipt|recu|avoir|credit\s+note"
    r"|bon\s+de\s+livraison|delivery\s+note|tax\s+invoice|facture\s+proforma|note\s+d.honoraires"
)
_TITLE_RE = re.compile(r"(?<![a-z])(?:" + _TITLE_WORDS + r")(?![a-z])")
_NOT_A_NAME_RE = re.compile(
    r"@|www\.|https?:|\btel\b|\btel\.|phone|\bfax\b|bill\s+to|ship\s+to|facture\s+a\b|factur[ée]\s+a|client"
    r"|customer|destinataire|adresse|address|\bpage\b|\bdate\b|\bn\s?[°º]|siret|siren|rccm|nif\b|ninea|tva\b|vat\b"
    r"|iban|bic\b|swift|capital|\btotal\b|montant|amount|subtotal|balance|a\s+payer|^\W*$"
    # addresses: postcodes, street words
    r"|\b\d{4,}\b|\b(?:rue|avenue|av\.|boulevard|bd|route|chaussee|quartier|commune|street|road|lane"
    r"|drive|suite|p\.?\s?o\.?\s+box|b\.?p\.?)\b"
)


_NAME_STOP_RE = re.compile(
    r"\s(?:" + _TITLE_WORDS + r"|date|client|customer|tel|phone|email|n\s?[°º]|no\.|invoice|facture"
    r"|siret|rccm|nif|vat|tva|iban)(?![a-z])"
)


def _clean_name(text: str) -> str | None:
    # OCR may merge the name with the next column ("ACME SARL  N° facture : 12")
    stop = _NAME_STOP_RE.search(_fold(text))
    if stop:
        text = text[: stop.start()]
    text = text.strip(" :-–|.,;")
    text = re.sub(r"\s{2,}", " ", text)
    if not re.search(r"[^\W\d_]{3,}", text) or len(text) > 80:
        return None
    return text


def _pick_supplier(lines: list[_Line], warnings: list[dict]) -> str | None:
    for line in lines:
        for s, e, seg in _segments(line.spaced):
            folded = line.folded[s:e]
            m = _SUPPLIER_LABEL_RE.match(folded)
            if not m:
                continue
            value = _clean_name(seg[m.end():])
            if value is None and not seg[m.end():].strip():
                below = _next_nonempty(lines, line.idx, max_skip=0)
                if below is not None:
                    cell = _aligned_cell(line, s, e, below)
                    value = _clean_name(cell) if cell else None
            if value:
                return value
    # heuristic: first name-looking cell in the first lines of the document
    seen = 0
    for line in lines:
        if not line.spaced.strip():
            continue
        seen += 1
        if seen > 8:
            break
        segs = _segments(line.spaced)
        if not segs:
            continue
        s, e, seg = segs[0]
        # a large bold name OCR spaced out ("Katanga  Outillage SARL   FACTURE"):
        # cells a gap of 2-3 spaces apart are one cell when the next is words
        for s2, e2, seg2 in segs[1:]:
            if s2 - e > 3 or not re.fullmatch(r"[^\W\d_][\w&'’.\- ]*", seg2) or _TITLE_RE.search(line.folded[s2:e2]):
                break
            seg, e = line.spaced[s:e2], e2
        folded = line.folded[s:e]
        t = _TITLE_RE.search(folded)
        if t is not None:
            if t.start() == 0:
                continue  # "FACTURE", "Facture N° 12"
            seg, folded = seg[: t.start()], folded[: t.start()]  # "ACME SARL FACTURE" (OCR merged columns)
        if re.match(r"\s*\d", seg) or _NOT_A_NAME_RE.search(folded) or ":" in seg:
            continue
        value = _clean_name(seg)
        if value:
            return value
    _warn(warnings, "supplier_not_found", "No supplier name found.")
    return None


_LEGAL_SUFFIXES = {
    "sarl", "sarlu", "sas", "sasu", "sa", "eurl", "snc", "sci", "scs", "sprl", "srl", "suarl", "sca",
    "scop", "ets", "etablissements", "ste", "cie", "ltd", "limited", "llc", "llp", "lp",
    "inc", "incorporated", "corp", "corporation", "co", "plc", "gmbh", "ag", "kg", "ug", "bv", "nv",
    "spa", "ab", "as", "oy", "pty", "pvt",
}


def normalize_supplier(name: str) -> str:
    """Canonical form of a company name for comparisons.

    Casefold, strip accents, collapse dotted acronyms (``S.A.R.L.`` -> ``sarl``),
    replace punctuation with spaces, drop ``&``/``and``/``et``, drop legal-form
    words at the start or end
    (SARL, SAS, SA, SPRL, Ltd, LLC, Inc, GmbH, PLC, Corp, Co, Ets…) and collapse
    spaces. ``"Bâtiments Kivu S.A.R.L."`` -> ``"batiments kivu"``.
    """
    s = _strip_accents((name or "").casefold())
    s = s.replace("&", " ")
    s = re.sub(r"\b(?:[a-z]\.){2,}[a-z]?\.?", lambda m: m.group(0).replace(".", ""), s)
    s = re.sub(r"[^\w\s]|_", " ", s)
    words = [w for w in s.split() if w not in ("and", "et")]  # "& Fils" == "et Fils"
    while words and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    while words and words[0] in _LEGAL_SUFFIXES:
        words.pop(0)
    return " ".join(words)


# ---------------------------------------------------------------------------
# IBAN
# ---------------------------------------------------------------------------

_IBAN_CANDIDATE_RE = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11,34}")

# OCR letter/digit confusions, tried (after the country code) only when the
# IBAN as read fails the checksum, and kept only if the result passes it.
_OCR_DIGIT_FIXES = (
    str.maketrans({"O": "0"}),
    str.maketrans({"O": "0", "I": "1", "L": "1"}),
    str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5", "B": "8", "Z": "2"}),
)


def _iban_from_candidate(raw: str) -> tuple[str | None, bool]:
    """(valid compact IBAN or None, looked-like-a-complete-IBAN)."""
    chars, ends = [], []
    for i, ch in enumerate(raw):
        if ch.isalnum():
            chars.append(ch)
            nxt = raw[i + 1] if i + 1 < len(raw) else " "
            ends.append(not nxt.isalnum())
    compact = "".join(chars)
    country = compact[:2]
    expected = IBAN_LENGTHS.get(country)
    lengths = [expected] if expected else [n for n in range(len(compact), 14, -1)]
    complete = False
    for n in lengths:
        if n > len(compact) or not ends[n - 1]:
            continue
        complete = True
        cand = compact[:n]
        if iban_mod97(cand) == 1:
            return cand, True
        tried = {cand}
        for table in _OCR_DIGIT_FIXES:
            fixed = cand[:2] + cand[2:].translate(table)
            if fixed not in tried and fixed[2:4].isdigit() and iban_mod97(fixed) == 1:
                return fixed, True
            tried.add(fixed)
    return None, complete


_LABELLED_IBAN_START_RE = re.compile(r"(IBAN\W{0,3})([A-Z0-9]{2})(?=\d{2}[ \-]?[A-Z0-9])")
_DIGIT_AS_LETTER = str.maketrans({"1": "I", "0": "O", "5": "S", "8": "B", "2": "Z", "6": "G"})


def _fix_country_code(upper: str) -> str:
    """``IBAN C193 CI00 …``: OCR read the country code's I as 1. Right after an
    IBAN label, digits in the first two characters are read as the letters
    they look like; the result still has to pass the mod-97 checksum and the
    country's length, so a wrong guess is simply not an IBAN."""
    def fix(m: re.Match) -> str:
        cc = m.group(2).translate(_DIGIT_AS_LETTER)
        return m.group(1) + (cc if cc in IBAN_LENGTHS else m.group(2))
    return _LABELLED_IBAN_START_RE.sub(fix, upper)


def _pick_iban(lines: list[_Line], warnings: list[dict]) -> str | None:
    labelled, other = [], []
    for line in lines:
        upper = line.spaced.upper()
        has_label = "iban" in line.folded
        if has_label:
            upper = _fix_country_code(upper)
        for m in _IBAN_CANDIDATE_RE.finditer(upper):
            iban, complete = _iban_from_candidate(m.group(0))
            if iban is not None:
                (labelled if has_label else other).append(iban)
            elif has_label or complete:
                if has_label or IBAN_LENGTHS.get(m.group(0)[:2]):
                    _warn(warnings, "iban_checksum_invalid",
                          "An IBAN-like number fails the ISO 13616 checksum; it was ignored.")
    pool = labelled or other
    distinct = list(dict.fromkeys(pool))
    if len(distinct) > 1:
        _warn(warnings, "iban_ambiguous", "Several different valid IBANs found; none kept.")
        return None
    return distinct[0] if distinct else None


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def parse_invoice(text: str, *, expected_currency: str | None = None) -> InvoiceParse:
    """Extract amount, currency, date, number, supplier and IBAN tail from
    invoice ``text``. Never raises on odd input; problems become warnings.

    ``expected_currency`` (the milestone's required currency, if any) is used
    for one thing only: deciding whether a "FCFA" is XOF or XAF when nothing
    on the page says which (``currency_evidence`` then reads ``milestone:…``).
    """
    warnings: list[dict] = []
    lines = _lines(text or "")
    doc_sep = _document_decimal_sep(lines)
    in_words = amount_in_words(text or "")

    cands = _amount_candidates(lines, doc_sep)
    total = _pick_amount(cands, warnings, in_words)
    amount = None
    if total is not None:
        try:
            amount = total.value.quantize(CENT)
        except InvalidOperation:  # pragma: no cover - absurdly large value
            amount = None
    if amount is not None and in_words is not None and not _words_agree(amount, in_words):
        _warn(warnings, "amount_words_mismatch",
              "The total in figures and the amount written in words disagree (OCR misread?); amount left empty.")
        amount = None
    iban = _pick_iban(lines, warnings)
    currency, currency_evidence = _pick_currency(
        lines, total, warnings, iban=iban, expected=(expected_currency or "").upper() or None
    )
    fields = InvoiceFields(
        amount=amount,
        currency=currency,
        currency_evidence=currency_evidence,
        date=_pick_date(lines, warnings),
        number=_pick_number(lines, warnings),
        supplier=_pick_supplier(lines, warnings),
        iban_last4=iban_last4(iban) if iban else None,
        iban_masked=mask_iban(iban) if iban else None,
    )
    return InvoiceParse(fields=fields, warnings=warnings)
