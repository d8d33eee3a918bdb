"""End to end: generated invoices -> proofs.ocr.extract_text -> proofs.invoice.parse_invoice.

The invoices (tests/proofs/invoice_samples.py) are generated at test time in
several layouts, languages, number styles and currencies, both as text-layer
PDFs and as noisy ~200 dpi scans. Requirements:

* text-layer PDFs: every field right;
* scans: at least 90 % of all fields right, and the amount is never wrong
  (missing is allowed);
* an image-only PDF goes through pypdfium2 (embedded scan at native
  resolution) + Tesseract.

The Tesseract tests are skipped only when the tesseract binary is missing.
"""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from proofs import ocr
from proofs.invoice import normalize_supplier, parse_invoice
from proofs.ocr import OcrFailed, OcrUnavailable, extract_text, tesseract_available
from tests.proofs.invoice_samples import (
    FIELDS,
    SAMPLES,
    SampleInvoice,
    found_values,
    image_pdf_from_png,
    render_pdf,
    render_scan_png,
    score_fields,
)

_skip_without_tesseract = pytest.mark.skipif(
    not tesseract_available(),
    reason="Tesseract OCR binary not installed (apt-get install tesseract-ocr tesseract-ocr-fra)",
)


def needs_tesseract(test):
    """Skipped without the tesseract binary; marked slow (pytest.ini marker)."""
    return pytest.mark.slow(_skip_without_tesseract(test))

SCAN_ACCURACY_MIN = 0.90


def test_the_sample_set_is_varied():
    assert len(SAMPLES) >= 6
    assert {s.language for s in SAMPLES} == {"fr", "en"}
    assert len({s.expected["currency"] for s in SAMPLES}) >= 4
    assert all(set(s.expected) == set(FIELDS) for s in SAMPLES)


# --------------------------------------------------------------------------
# Text-layer PDFs: everything right, no OCR involved
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_text_layer_pdf_every_field_right(sample: SampleInvoice, monkeypatch):
    # a text-layer PDF must never need Tesseract
    monkeypatch.setattr(ocr, "tesseract_available", lambda: False)
    result = extract_text(render_pdf(sample), content_type="application/pdf")
    assert result.source == "pdf_text"
    assert result.pages == 1
    parsed = parse_invoice(result.text)
    score = score_fields(parsed.fields, sample.expected, normalize_supplier)
    wrong = {k: (sample.expected[k], found_values(parsed.fields)[k]) for k, ok in score.items() if not ok}
    assert not wrong, f"{sample.name}: (expected, found) = {wrong}\n{result.text}"
    assert parsed.warnings == []


# --------------------------------------------------------------------------
# Noisy scans through Tesseract
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scan_results():
    """OCR every sample scan once: name -> (sample, OcrResult, parse, seconds)."""
    results = {}
    for sample in SAMPLES:
        png = render_scan_png(sample, dpi=200)
        started = time.perf_counter()
        result = extract_text(png, content_type="image/png")
        elapsed = time.perf_counter() - started
        results[sample.name] = (sample, result, parse_invoice(result.text), elapsed)
    return results


@needs_tesseract
def test_scans_fields_accuracy(scan_results, record_property):
    right = total = 0
    misses = []
    for sample, result, parsed, _ in scan_results.values():
        assert result.source == "tesseract"
        assert result.pages == 1
        score = score_fields(parsed.fields, sample.expected, normalize_supplier)
        right += sum(score.values())
        total += len(score)
        misses += [
            f"{sample.name}.{k}: expected {sample.expected[k]!r}, found {found_values(parsed.fields)[k]!r}"
            for k, ok in score.items()
            if not ok
        ]
    record_property("scan_fields_right", f"{right}/{total}")
    assert total == len(SAMPLES) * len(FIELDS)
    assert right / total >= SCAN_ACCURACY_MIN, f"{right}/{total} fields right:\n" + "\n".join(misses)


@needs_tesseract
def test_scans_amount_never_wrong(scan_results):
    for sample, result, parsed, _ in scan_results.values():
        found = parsed.fields.amount
        if found is not None:
            assert str(found) == sample.expected["amount"], (
                f"{sample.name}: WRONG amount {found} (expected {sample.expected['amount']})\n{result.text}"
            )


@needs_tesseract
def test_scan_timing_is_sane(scan_results, record_property):
    timings = {name: round(seconds, 2) for name, (_, _, _, seconds) in scan_results.items()}
    record_property("ocr_seconds_per_page", timings)
    # generous: ~1-2.5 s per page with OMP_THREAD_LIMIT=1 on 2 cores (two passes at worst)
    assert max(timings.values()) < 20, timings


# --------------------------------------------------------------------------
# Image-only PDF: pypdfium2 (embedded scan) + Tesseract
# --------------------------------------------------------------------------


@needs_tesseract
def test_image_only_pdf_goes_through_pypdfium2_and_tesseract():
    sample = next(s for s in SAMPLES if s.name == "en_us_usd")
    png = render_scan_png(sample, dpi=200, seed=7)
    pdf = image_pdf_from_png(png, dpi=200)

    # no text layer at all
    from pypdf import PdfReader

    assert not PdfReader(io.BytesIO(pdf)).pages[0].extract_text().strip()
    # the embedded scan is taken at its native resolution, not re-rendered
    (page_image,) = ocr._pdf_page_images(pdf, [0])
    assert page_image.size == Image.open(io.BytesIO(png)).size

    result = extract_text(pdf, content_type="application/pdf")
    assert result.source == "tesseract"
    assert result.pages == 1
    parsed = parse_invoice(result.text)
    score = score_fields(parsed.fields, sample.expected, normalize_supplier)
    assert parsed.fields.amount is None or str(parsed.fields.amount) == sample.expected["amount"]
    assert sum(score.values()) >= len(FIELDS) - 1, found_values(parsed.fields)


def test_page_without_a_single_image_is_rendered_at_the_ocr_dpi():
    blank = SampleInvoice("blank", "en", "rules only", (), SAMPLES[0].rules, {k: None for k in FIELDS})
    (page_image,) = ocr._pdf_page_images(render_pdf(blank), [0])
    want = (595.28 * ocr.RENDER_DPI / 72, 841.89 * ocr.RENDER_DPI / 72)
    assert all(abs(got - w) <= 2 for got, w in zip(page_image.size, want)), page_image.size


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_scans_need_tesseract(monkeypatch):
    monkeypatch.setattr(ocr, "tesseract_available", lambda: False)
    png = render_scan_png(SAMPLES[0])
    with pytest.raises(OcrUnavailable):
        extract_text(png, content_type="image/png")
    with pytest.raises(OcrUnavailable):
        extract_text(image_pdf_from_png(png), content_type="application/pdf")


@needs_tesseract
def test_missing_language_pack_is_unavailable(monkeypatch):
    png = render_scan_png(SAMPLES[0])
    with pytest.raises(OcrUnavailable):  # caught by the pre-check
        extract_text(png, content_type="image/png", languages="fra+xxx")
    # and by tesseract's own error when the language list cannot be read
    monkeypatch.setattr(ocr, "_installed_languages", lambda: frozenset())
    with pytest.raises(OcrUnavailable):
        extract_text(png, content_type="image/png", languages="xxx")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"%PDF-1.4 garbage", "application/pdf"),
        (b"not an image at all", "image/png"),
        (b"", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"hello", ""),
    ],
)
def test_unreadable_input_fails(data, content_type):
    with pytest.raises(OcrFailed):
        extract_text(data, content_type=content_type)


def test_content_type_parameters_are_ignored(monkeypatch):
    monkeypatch.setattr(ocr, "tesseract_available", lambda: False)
    result = extract_text(render_pdf(SAMPLES[0]), content_type="Application/PDF; charset=binary")
    assert result.source == "pdf_text"


def test_omp_thread_limit_default_is_set():
    import os

    assert os.environ.get("OMP_THREAD_LIMIT")
