"""Synthetic invoices for the OCR / invoice-parsing tests and benchmarks.

Importable from tests and benchmarks (``from tests.proofs.invoice_samples
import SAMPLES, render_pdf, render_scan_png``); no pytest fixtures here and no
dependency beyond Pillow: the text-layer PDFs are written by a tiny PDF writer
below (DejaVu Sans embedded as a simple TrueType font, WinAnsi encoding), so
``pypdf`` extracts real text with real glyph widths, exactly like an invoice
exported from accounting software.

Each :class:`SampleInvoice` is one A4 page described as positioned text items
(points, y measured from the top of the page to the text baseline) plus
horizontal/vertical rules. The same description renders to

* ``render_pdf(sample)``: a text-layer PDF,
* ``render_scan(sample)`` / ``render_scan_png(sample)``: a greyscale "scan"
  at ~200 dpi with light noise, speckles, slight blur and a small skew,
* ``image_pdf_from_png(png)``: an image-only PDF wrapping a scan.

``sample.expected`` holds the ground truth for the six parsed fields
(amount as a 2-decimal string, ISO currency, ISO date, number, supplier,
IBAN last 4); ``None`` means the parser must find nothing (or must refuse,
e.g. an ambiguous currency).
"""

from __future__ import annotations

import io
import random
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_REGULAR = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

PAGE_W = 595.28  # A4 in points
PAGE_H = 841.89

NBSP = "\u00a0"
NNBSP = "\u202f"  # narrow no-break space (French typography thousands separator)

FIELDS = ("amount", "currency", "date", "number", "supplier", "iban_last4")


@dataclass(frozen=True)
class TextItem:
    x: float
    y: float
    text: str
    size: float = 9.5
    bold: bool = False
    align: str = "left"  # "left" or "right" (x is then the right edge)


@dataclass(frozen=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float
    width: float = 0.8


@dataclass(frozen=True)
class SampleInvoice:
    name: str
    language: str
    description: str
    items: tuple[TextItem, ...]
    rules: tuple[Rule, ...]
    expected: dict = field(hash=False)


# --------------------------------------------------------------------------
# Helpers to build samples
# --------------------------------------------------------------------------


def make_iban(country: str, bban: str) -> str:
    """A checksum-valid IBAN (compact form) for ``country`` + ``bban``."""
    rearranged = bban + country + "00"
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


def group4(s: str) -> str:
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


class _Page:
    def __init__(self) -> None:
        self.items: list[TextItem] = []
        self.rules: list[Rule] = []

    def t(self, x, y, text, size=9.5, bold=False, align="left"):
        self.items.append(TextItem(x, y, text, size, bold, align))

    def r(self, x, y, text, size=9.5, bold=False):
        self.t(x, y, text, size, bold, "right")

    def hline(self, x1, x2, y, width=0.8):
        self.rules.append(Rule(x1, y, x2, y, width))

    def vline(self, x, y1, y2, width=0.8):
        self.rules.append(Rule(x, y1, x, y2, width))


def _sample(name, language, description, page: _Page, **expected) -> SampleInvoice:
    missing = set(FIELDS) - set(expected)
    if missing:
        raise ValueError(f"{name}: expected fields missing: {sorted(missing)}")
    return SampleInvoice(name, language, description, tuple(page.items), tuple(page.rules), expected)


def _fr_classic() -> SampleInvoice:
    # French, EUR, "1 234,56" with (narrow) no-break-space thousands,
    # Total HT / TVA / Total TTC, due date that must not win, spaced IBAN.
    iban = make_iban("FR", "30006000011234567890189")
    p = _Page()
    p.t(50, 70, "Bâtiments Kivu SARL", 15, bold=True)
    p.t(50, 88, "12 avenue de la Paix, 75002 Paris")
    p.t(50, 101, "Tél. +33 1 42 00 00 00")
    p.t(50, 114, "SIRET 812 456 789 00012")
    p.r(545, 70, "FACTURE", 17, bold=True)
    p.r(545, 92, "Facture N° : FA-2026-0042")
    p.r(545, 105, "Date de facture : 04/03/2026")
    p.r(545, 118, "Échéance : 03/04/2026")
    p.t(330, 160, "Facturé à :", bold=True)
    p.t(330, 174, "Kobatela Escrow SAS")
    p.t(330, 187, "8 rue du Port, Goma")
    y = 240
    p.t(50, y, "Désignation", bold=True)
    p.r(330, y, "Qté", bold=True)
    p.r(430, y, "PU HT", bold=True)
    p.r(545, y, "Montant HT", bold=True)
    p.hline(50, 545, y + 6)
    rows = [
        ("Ciment Portland 50 kg", "40", "12,50", "500,00"),
        ("Fer à béton 12 mm", "25", "18,90", "472,50"),
        ("Main d'œuvre maçonnerie", "1", f"1{NNBSP}100,00", f"1{NNBSP}100,00"),
    ]
    for i, (d, q, pu, m) in enumerate(rows):
        yy = y + 24 + 17 * i
        p.t(50, yy, d)
        p.r(330, yy, q)
        p.r(430, yy, pu)
        p.r(545, yy, m)
    p.hline(50, 545, y + 24 + 17 * 3 - 8)
    ty = 360
    p.t(370, ty, "Total HT")
    p.r(545, ty, f"2{NNBSP}072,50 €")
    p.t(370, ty + 17, "TVA 20 %")
    p.r(545, ty + 17, "414,50 €")
    p.t(370, ty + 36, "Total TTC", bold=True)
    p.r(545, ty + 36, f"2{NNBSP}487,00 €", bold=True)
    p.t(50, 700, "Règlement par virement sous 30 jours.")
    p.t(50, 714, f"IBAN : {group4(iban)}")
    p.t(50, 728, "BIC : AGRIFRPPXXX")
    return _sample(
        "fr_classic_eur", "fr", "French, EUR, space thousands, HT/TVA/TTC, due date", p,
        amount="2487.00", currency="EUR", date="2026-03-04", number="FA-2026-0042",
        supplier="Bâtiments Kivu SARL", iban_last4=iban[-4:],
    )


def _en_us() -> SampleInvoice:
    # English (US), "$1,234.56", subtotal + sales tax + total + amount due,
    # month-name dates, no IBAN (ACH details that must not look like one).
    p = _Page()
    p.t(50, 70, "Lakeside Solar LLC", 15, bold=True)
    p.t(50, 88, "400 Lake Shore Dr, Chicago, IL 60611")
    p.t(50, 101, "billing@lakeside-solar.example")
    p.r(545, 70, "INVOICE", 17, bold=True)
    p.r(545, 92, "Invoice #: INV-10293")
    p.r(545, 105, "Invoice date: March 4, 2026")
    p.r(545, 118, "Due date: April 3, 2026")
    p.t(50, 160, "Bill To:", bold=True)
    p.t(50, 174, "Kobatela Ltd")
    p.t(50, 187, "KG 7 Ave, Kigali")
    y = 240
    p.t(50, y, "Description", bold=True)
    p.r(330, y, "Qty", bold=True)
    p.r(430, y, "Unit price", bold=True)
    p.r(545, y, "Amount", bold=True)
    p.hline(50, 545, y + 6)
    rows = [
        ("Solar panel 450W", "12", "$310.00", "$3,720.00"),
        ("Hybrid inverter 10kW", "1", "$2,450.00", "$2,450.00"),
        ("Installation and wiring", "1", "$1,280.00", "$1,280.00"),
    ]
    for i, (d, q, pu, m) in enumerate(rows):
        yy = y + 24 + 17 * i
        p.t(50, yy, d)
        p.r(330, yy, q)
        p.r(430, yy, pu)
        p.r(545, yy, m)
    ty = 360
    p.t(360, ty, "Subtotal")
    p.r(545, ty, "$7,450.00")
    p.t(360, ty + 17, "Sales tax (8.25%)")
    p.r(545, ty + 17, "$614.63")
    p.t(360, ty + 34, "Total")
    p.r(545, ty + 34, "$8,064.63")
    p.hline(360, 545, ty + 42)
    p.t(360, ty + 58, "Amount due (USD)", bold=True)
    p.r(545, ty + 58, "$8,064.63", bold=True)
    p.t(50, 700, "Pay by ACH: routing 071000013, account ending 4421.")
    p.t(50, 714, "Thank you for your business!")
    return _sample(
        "en_us_usd", "en", "English US, 1,234.56, subtotal/tax/total/amount due", p,
        amount="8064.63", currency="USD", date="2026-03-04", number="INV-10293",
        supplier="Lakeside Solar LLC", iban_last4=None,
    )


def _fr_grid_cdf() -> SampleInvoice:
    # French, CDF, "1.234,56" dot-grouping, boxed table with a grid,
    # labelled supplier (first line is the title), French month-name date.
    p = _Page()
    p.t(50, 70, "FACTURE", 17, bold=True)
    p.t(50, 100, "Fournisseur : Quincaillerie du Lac", bold=True)
    p.t(50, 114, "Boulevard du 30 Juin 221, Kinshasa/Gombe")
    p.t(50, 127, "RCCM CD/KIN/RCCM/19-B-01234")
    p.t(340, 100, "N° facture : 2026/0117")
    p.t(340, 114, "Date : 4 mars 2026")
    p.t(340, 127, "Client : Kobatela RDC")
    # grid table
    top, left, right = 170, 50, 545
    cols = [50, 290, 360, 450, 545]
    p.hline(left, right, top)
    header = ("Article", "Quantité", "Prix unitaire", "Total")
    rows = [
        ("Tôles ondulées BG32", "120", "18.500,00", "2.220.000,00"),
        ("Chevrons 8x8 (4 m)", "200", "6.250,00", "1.250.000,00"),
        ("Clous de charpente (kg)", "50", "8.000,00", "400.000,00"),
    ]
    p.t(cols[0] + 6, top + 15, header[0], bold=True)
    for c in range(1, 4):
        p.r(cols[c + 1] - 6, top + 15, header[c], bold=True)
    p.hline(left, right, top + 22)
    for i, row in enumerate(rows):
        yy = top + 22 + 17 * (i + 1) - 2
        p.t(cols[0] + 6, yy, row[0])
        for c in range(1, 4):
            p.r(cols[c + 1] - 6, yy, row[c])
    bottom = top + 22 + 17 * 3 + 6
    p.hline(left, right, bottom)
    for x in cols:
        p.vline(x, top, bottom)
    ty = bottom + 30
    p.t(340, ty, "Sous-total")
    p.r(545, ty, "3.870.000,00")
    p.t(340, ty + 17, "TVA 16 %")
    p.r(545, ty + 17, "619.200,00")
    p.t(340, ty + 36, "Net à payer", bold=True)
    p.r(545, ty + 36, "4.489.200,00 CDF", bold=True)
    p.t(50, 700, "Paiement : Rawbank, compte 00011-00130-01234567890-41")
    return _sample(
        "fr_grid_cdf", "fr", "French, CDF, 1.234,56, gridded table, labelled supplier", p,
        amount="4489200.00", currency="CDF", date="2026-03-04", number="2026/0117",
        supplier="Quincaillerie du Lac", iban_last4=None,
    )


def _fr_xof_iso() -> SampleInvoice:
    # French, integer amounts with space thousands, FCFA symbol disambiguated
    # by an ISO code elsewhere ("Devise : XOF"), ISO date (the dateutil trap).
    iban = make_iban("SN", "K01001520000012345678901")
    p = _Page()
    p.t(50, 70, "Sahel BTP SARL", 15, bold=True)
    p.t(50, 88, "Route de Rufisque, Dakar")
    p.t(50, 101, "NINEA 004512345 2G3")
    p.t(340, 70, "FACTURE N° 000457", 12, bold=True)
    p.t(340, 90, "Date : 2026-03-04")
    p.t(340, 103, "Devise : XOF")
    p.t(340, 116, "Client : Kobatela Sénégal")
    y = 200
    p.t(50, y, "Prestation", bold=True)
    p.r(545, y, "Montant", bold=True)
    p.hline(50, 545, y + 6)
    rows = [
        ("Terrassement et fondations", f"640{NBSP}000"),
        ("Élévation murs parpaings", f"419{NBSP}322"),
    ]
    for i, (d, m) in enumerate(rows):
        p.t(50, y + 24 + 17 * i, d)
        p.r(545, y + 24 + 17 * i, m)
    ty = 300
    p.t(340, ty, "Total HT")
    p.r(545, ty, f"1{NBSP}059{NBSP}322")
    p.t(340, ty + 17, "TVA 18 %")
    p.r(545, ty + 17, f"190{NBSP}678")
    p.t(340, ty + 36, "Total TTC", bold=True)
    p.r(545, ty + 36, f"1{NBSP}250{NBSP}000 FCFA", bold=True)
    p.t(50, 700, f"IBAN : {group4(iban)}")
    return _sample(
        "fr_xof_iso", "fr", "French, XOF, integer amounts, FCFA + ISO code, ISO date", p,
        amount="1250000.00", currency="XOF", date="2026-03-04", number="000457",
        supplier="Sahel BTP SARL", iban_last4=iban[-4:],
    )


def _en_uk_plain() -> SampleInvoice:
    # English (UK), plain "1234.56" amounts, dotted date, "From:" label,
    # pound sign, GB IBAN.
    iban = make_iban("GB", "NWBK60161331926819")
    p = _Page()
    p.t(50, 70, "INVOICE", 17, bold=True)
    p.t(50, 96, "From: Thames Joinery Ltd")
    p.t(50, 110, "Unit 4, Riverside Works, London SE1 9PX")
    p.t(340, 96, "Invoice No. 2026-117")
    p.t(340, 110, "Date: 04.03.2026")
    p.t(340, 124, "Customer: Kobatela Ltd")
    y = 190
    p.t(50, y, "Item", bold=True)
    p.r(400, y, "Hours", bold=True)
    p.r(545, y, "Line total", bold=True)
    p.hline(50, 545, y + 6)
    rows = [("Oak staircase fitting", "24", "1080.00"), ("Door frames (x6)", "10", "450.00")]
    for i, (d, h, m) in enumerate(rows):
        p.t(50, y + 24 + 17 * i, d)
        p.r(400, y + 24 + 17 * i, h)
        p.r(545, y + 24 + 17 * i, m)
    ty = 280
    p.t(380, ty, "Subtotal")
    p.r(545, ty, "1530.00")
    p.t(380, ty + 17, "VAT 20%")
    p.r(545, ty + 17, "306.00")
    p.t(380, ty + 36, "Total", bold=True)
    p.r(545, ty + 36, "£1836.00", bold=True)
    p.t(50, 690, "Payment within 14 days by bank transfer.")
    p.t(50, 704, f"IBAN: {group4(iban)}   BIC: NWBKGB2L")
    return _sample(
        "en_uk_gbp", "en", "English UK, plain 1234.56, dotted date, From: label", p,
        amount="1836.00", currency="GBP", date="2026-03-04", number="2026-117",
        supplier="Thames Joinery Ltd", iban_last4=iban[-4:],
    )


def _en_header_columns() -> SampleInvoice:
    # English, labels on one row and values on the row below (column layout),
    # "EUR 3,480.00", compact (unspaced) German IBAN.
    iban = make_iban("DE", "370400440532013000")
    p = _Page()
    p.t(50, 70, "Nordlicht Baustoffe GmbH", 15, bold=True)
    p.t(50, 88, "Hafenstrasse 12, 20457 Hamburg")
    p.r(545, 70, "INVOICE", 17, bold=True)
    hy = 140
    for x, label in ((50, "Invoice No"), (180, "Invoice Date"), (310, "Customer"), (440, "Amount Due")):
        p.t(x, hy, label, bold=True)
    p.hline(50, 545, hy + 6)
    for x, value in ((50, "NB-2026-0310"), (180, "4 March 2026"), (310, "Kobatela BV"), (440, "EUR 3,480.00")):
        p.t(x, hy + 22, value)
    y = 220
    p.t(50, y, "Product", bold=True)
    p.r(330, y, "Qty", bold=True)
    p.r(430, y, "Price", bold=True)
    p.r(545, y, "Total", bold=True)
    p.hline(50, 545, y + 6)
    rows = [("Insulation panels 100 mm", "50", "38.00", "1,900.00"), ("Vapour barrier roll", "20", "50.00", "1,000.00")]
    for i, (d, q, pu, m) in enumerate(rows):
        p.t(50, y + 24 + 17 * i, d)
        p.r(330, y + 24 + 17 * i, q)
        p.r(430, y + 24 + 17 * i, pu)
        p.r(545, y + 24 + 17 * i, m)
    ty = 310
    p.t(370, ty, "Total net")
    p.r(545, ty, "2,900.00")
    p.t(370, ty + 17, "VAT 20%")
    p.r(545, ty + 17, "580.00")
    p.t(370, ty + 36, "Total", bold=True)
    p.r(545, ty + 36, "EUR 3,480.00", bold=True)
    p.t(50, 700, f"IBAN: {iban}")
    p.t(50, 714, "BIC: COBADEFFXXX")
    return _sample(
        "en_columns_eur", "en", "English, label row above value row, 1,234.56, compact IBAN", p,
        amount="3480.00", currency="EUR", date="2026-03-04", number="NB-2026-0310",
        supplier="Nordlicht Baustoffe GmbH", iban_last4=iban[-4:],
    )


def _fr_net_a_payer() -> SampleInvoice:
    # French, "Émetteur" label, "1er avril 2026", Net à payer with ISO code,
    # Montant HT lines, Belgian IBAN.
    iban = make_iban("BE", "539007547034")
    p = _Page()
    p.t(50, 70, "Facture", 17, bold=True)
    p.t(50, 96, "Émetteur : Menuiserie Ngoma SPRL")
    p.t(50, 110, "Avenue Louise 54, 1050 Bruxelles")
    p.t(340, 96, "Facture n° F2026-088")
    p.t(340, 110, "Bruxelles, le 1er avril 2026")
    p.t(340, 124, "Date d'échéance : 30 avril 2026")
    y = 190
    p.t(50, y, "Désignation", bold=True)
    p.r(545, y, "Montant HT", bold=True)
    p.hline(50, 545, y + 6)
    rows = [("Fenêtres bois double vitrage (x4)", "960,00"), ("Pose et finitions", "220,00")]
    for i, (d, m) in enumerate(rows):
        p.t(50, y + 24 + 17 * i, d)
        p.r(545, y + 24 + 17 * i, m)
    ty = 280
    p.t(340, ty, "Total HT")
    p.r(545, ty, f"1{NBSP}180,00")
    p.t(340, ty + 17, "TVA 18 %")
    p.r(545, ty + 17, "212,40")
    p.t(340, ty + 36, "Net à payer (EUR)", bold=True)
    p.r(545, ty + 36, f"1{NBSP}392,40", bold=True)
    p.t(50, 700, f"IBAN {group4(iban)}")
    return _sample(
        "fr_net_a_payer", "fr", "French, Émetteur label, 1er avril, Net à payer (EUR)", p,
        amount="1392.40", currency="EUR", date="2026-04-01", number="F2026-088",
        supplier="Menuiserie Ngoma SPRL", iban_last4=iban[-4:],
    )


SAMPLES: tuple[SampleInvoice, ...] = (
    _fr_classic(),
    _en_us(),
    _fr_grid_cdf(),
    _fr_xof_iso(),
    _en_uk_plain(),
    _en_header_columns(),
    _fr_net_a_payer(),
)


# --------------------------------------------------------------------------
# Raster rendering ("scans")
# --------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _pil_font(size_px: int, bold: bool) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_BOLD if bold else FONT_REGULAR, size_px)


def render_clean(sample: SampleInvoice, dpi: int = 200) -> Image.Image:
    """The page as a clean greyscale raster image at ``dpi``."""
    k = dpi / 72.0
    img = Image.new("L", (round(PAGE_W * k), round(PAGE_H * k)), 255)
    draw = ImageDraw.Draw(img)
    for rule in sample.rules:
        draw.line(
            [(rule.x1 * k, rule.y1 * k), (rule.x2 * k, rule.y2 * k)],
            fill=0, width=max(1, round(rule.width * k)),
        )
    for item in sample.items:
        font = _pil_font(round(item.size * k), item.bold)
        anchor = "rs" if item.align == "right" else "ls"
        draw.text((item.x * k, item.y * k), item.text, fill=0, font=font, anchor=anchor)
    return img


def add_scan_noise(img: Image.Image, seed: int = 0, *, skew_deg: float | None = None) -> Image.Image:
    """Light scanner degradation: paper grey + gaussian noise, sparse speckles,
    slight blur and a small skew. Deterministic for a given ``seed``."""
    rng = random.Random(seed)
    if skew_deg is None:
        skew_deg = rng.uniform(-0.4, 0.4)
    out = img.convert("L")
    out = out.rotate(skew_deg, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    out = out.filter(ImageFilter.GaussianBlur(0.8))
    # seeded noise (Image.effect_noise uses the C rand() and is not reproducible):
    # mean of two uniform images ~ triangular noise around 128
    w, h = out.size
    n1 = Image.frombytes("L", out.size, rng.randbytes(w * h))
    n2 = Image.frombytes("L", out.size, rng.randbytes(w * h))
    noise = Image.blend(n1, n2, 0.5)
    # paper at ~235, ink at ~25, plus noise
    out = out.point(lambda v: 25 + v * 210 // 255)
    out = Image.blend(out, noise, 0.12)
    # sparse dark speckles (dust)
    px = out.load()
    for _ in range(w * h // 4000):
        x, y = rng.randrange(w), rng.randrange(h)
        px[x, y] = rng.randrange(0, 90)
    return out


def render_scan(sample: SampleInvoice, dpi: int = 200, seed: int | None = None) -> Image.Image:
    if seed is None:
        seed = sum(map(ord, sample.name))
    return add_scan_noise(render_clean(sample, dpi), seed)


def render_scan_png(sample: SampleInvoice, dpi: int = 200, seed: int | None = None) -> bytes:
    buf = io.BytesIO()
    render_scan(sample, dpi, seed).save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def image_pdf_from_png(png: bytes, dpi: int = 200) -> bytes:
    """An image-only PDF (no text layer) wrapping ``png``, as a scanner would."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("L").save(buf, format="PDF", resolution=dpi)
    return buf.getvalue()


# --------------------------------------------------------------------------
# Minimal text-layer PDF writer
# --------------------------------------------------------------------------


def _pdf_text_bytes(text: str) -> bytes:
    # WinAnsi (cp1252) has NBSP and € but not the narrow NBSP: text-layer
    # PDFs get a regular NBSP there (what most PDF producers emit anyway).
    raw = text.replace(NNBSP, NBSP).replace("œ", "oe").encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


@lru_cache(maxsize=2)
def _font_program(bold: bool) -> tuple[bytes, int, list[int]]:
    path = FONT_BOLD if bold else FONT_REGULAR
    with open(path, "rb") as fh:
        data = fh.read()
    font = ImageFont.truetype(path, 1000)
    widths = []
    for code in range(32, 256):
        try:
            ch = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            widths.append(0)
            continue
        widths.append(round(font.getlength(ch)))
    return zlib.compress(data, 6), len(data), widths


def _text_width_pt(text: str, size: float, bold: bool) -> float:
    _, _, widths = _font_program(bold)
    raw = text.replace(NNBSP, NBSP).replace("œ", "oe").encode("cp1252")
    return sum(widths[b - 32] if b >= 32 else 0 for b in raw) * size / 1000.0


def render_pdf(sample: SampleInvoice) -> bytes:
    """A one-page text-layer PDF of ``sample``."""
    ops: list[bytes] = [b"0 g 0 G"]
    for rule in sample.rules:
        ops.append(
            b"%.2f w %.2f %.2f m %.2f %.2f l S"
            % (rule.width, rule.x1, PAGE_H - rule.y1, rule.x2, PAGE_H - rule.y2)
        )
    for item in sample.items:
        x = item.x
        if item.align == "right":
            x -= _text_width_pt(item.text, item.size, item.bold)
        font = b"/F2" if item.bold else b"/F1"
        ops.append(
            b"BT %s %.2f Tf 1 0 0 1 %.2f %.2f Tm (%s) Tj ET"
            % (font, item.size, x, PAGE_H - item.y, _pdf_text_bytes(item.text))
        )
    content = zlib.compress(b"\n".join(ops))

    objects: list[bytes] = []

    def add(obj: bytes) -> int:
        objects.append(obj)
        return len(objects)

    def stream(dict_body: bytes, data: bytes) -> bytes:
        return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (dict_body, len(data), data)

    catalog = add(b"")  # placeholders, filled below
    pages = add(b"")
    font_ids = []
    for bold in (False, True):
        program, length1, widths = _font_program(bold)
        base = b"DejaVuSans-Bold" if bold else b"DejaVuSans"
        ff = add(stream(b"/Filter /FlateDecode /Length1 %d" % length1, program))
        desc = add(
            b"<< /Type /FontDescriptor /FontName /%s /Flags 32 /FontBBox [-1021 -463 1793 1232]"
            b" /ItalicAngle 0 /Ascent 928 /Descent -236 /CapHeight 729 /StemV 80 /FontFile2 %d 0 R >>"
            % (base, ff)
        )
        font_ids.append(
            add(
                b"<< /Type /Font /Subtype /TrueType /BaseFont /%s /FirstChar 32 /LastChar 255"
                b" /Widths [%s] /Encoding /WinAnsiEncoding /FontDescriptor %d 0 R >>"
                % (base, b" ".join(str(w).encode() for w in widths), desc)
            )
        )
    contents = add(stream(b"/Filter /FlateDecode", content))
    page = add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R"
        b" /Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>"
        % (pages, PAGE_W, PAGE_H, contents, font_ids[0], font_ids[1])
    )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages
    objects[pages - 1] = b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (i, obj))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, catalog, xref)
    )
    return out.getvalue()


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


def found_values(fields) -> dict:
    """The parser's ``InvoiceFields`` as comparable strings (same shape as
    ``SampleInvoice.expected``)."""
    return {
        "amount": None if fields.amount is None else str(fields.amount),
        "currency": fields.currency,
        "date": None if fields.date is None else fields.date.isoformat(),
        "number": fields.number,
        "supplier": fields.supplier,
        "iban_last4": fields.iban_last4,
    }


def score_fields(fields, expected: dict, normalize_supplier) -> dict[str, bool]:
    """Per field: is the parsed value right? Supplier names compare after
    ``normalize_supplier`` (OCR may drop accents or legal-suffix dots)."""
    found = found_values(fields)
    result = {}
    for name in FIELDS:
        want, got = expected[name], found[name]
        if name == "supplier" and want is not None and got is not None:
            result[name] = normalize_supplier(want) == normalize_supplier(got)
        else:
            result[name] = want == got
    return result
