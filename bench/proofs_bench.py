"""Proof pipeline benchmark: photo submission (5 MB JPEG) and OCR of one page.

Run through ``bench/proofs.sh`` (it starts a throwaway PostgreSQL and Redis).
Measures, in-process with the Django test client against PostgreSQL:

- ``POST /api/v1/proofs`` with a 5 MB geotagged JPEG (magic bytes, pixel
  limit, full decode, EXIF, Decimal geofence, the perceptual hashes and the
  platform-wide re-use lookup, streaming to storage with SHA-256,
  auto-approval and payout creation);
- OCR + invoice parsing of a one-page text-layer PDF and of a one-page
  200 dpi scan (Tesseract, OMP_THREAD_LIMIT=1).

Prints median and p95 next to the reference figures measured on this kind
of machine (2 cores).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import tracemalloc
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import django  # noqa: E402

django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

RUNS_PHOTO = int(os.environ.get("BENCH_PHOTO_RUNS", "10"))
PEAK_RUNS = 3  # extra runs under tracemalloc, for the heap peak only
RUNS_PDF = int(os.environ.get("BENCH_PDF_RUNS", "20"))
RUNS_SCAN = int(os.environ.get("BENCH_SCAN_RUNS", "3"))
REFERENCES = {
    "photo_5mb_submit": ("< 150 ms", "issue #12: median, perceptual hash and re-use lookup included"),
    "ocr_text_pdf": ("≈ 3 ms/page", "pypdf layout extraction measured on this machine kind"),
    "ocr_scan": ("≈ 1000 ms/page", "Tesseract 5.3, psm 4, OMP_THREAD_LIMIT=1, 2 cores"),
}


def five_mb_jpeg(lat: Decimal, lng: Decimal) -> bytes:
    from tests.proofs.photo_samples import geotagged_jpeg

    side = 2600  # random noise compresses badly: about 5 MB at quality 85
    # Taken after the escrow was created (the photo's window opens then), as a real site photo is.
    content = geotagged_jpeg(lat, lng, timezone.now(), size=(side, side))
    return content


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_photo() -> dict:
    from rest_framework.test import APIClient

    from kobatela.accounts.services import api_key_create
    from tests.factories import UserFactory, fund, make_escrow

    user = UserFactory()
    _, key = api_key_create(actor="system:bench", user=user, name="bench", scopes=["sender"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    site = (Decimal("-4.325000"), Decimal("15.322200"))
    timings, sizes, peaks = [], [], []
    # Timed runs first, then a few with tracemalloc for the heap peak: tracemalloc hooks every
    # allocation and slows the request by half again, so it never runs while the clock does.
    for run in range(RUNS_PHOTO + 1 + PEAK_RUNS):
        escrow = fund(make_escrow(client=user, proof_type="PHOTO",
                                  geofence={"lat": site[0], "lng": site[1], "radius_m": Decimal("100")}))
        content = five_mb_jpeg(*site)
        sizes.append(len(content))
        upload = SimpleUploadedFile(f"{uuid.uuid4().hex}.jpg", content, content_type="image/jpeg")
        traced = run > RUNS_PHOTO
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        response = client.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO",
                                                  "file": upload}, format="multipart")
        elapsed = time.perf_counter() - started
        if traced:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        assert response.status_code == 201 and response.json()["status"] == "APPROVED", response.content[:300]
        if 0 < run <= RUNS_PHOTO:  # the first run warms imports and caches
            timings.append(elapsed)
    return {"median_ms": statistics.median(timings) * 1000, "p95_ms": percentile(timings, 0.95) * 1000,
            "size_mb": statistics.mean(sizes) / 1e6, "peak_mb": max(peaks) / 1e6}


def bench_ocr(content: bytes, content_type: str, runs: int) -> dict:
    from proofs.invoice import parse_invoice
    from proofs.ocr import extract_text

    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        result = extract_text(content, content_type=content_type, languages="fra+eng")
        fields = parse_invoice(result.text).fields
        timings.append(time.perf_counter() - started)
    return {"median_ms": statistics.median(timings) * 1000, "p95_ms": percentile(timings, 0.95) * 1000,
            "amount": str(fields.amount), "source": result.source}


def main() -> None:
    from tests.proofs.invoice_samples import SAMPLES, render_pdf, render_scan_png

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0)
    try:
        photo = bench_photo()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    pdf = bench_ocr(render_pdf(SAMPLES[0]), "application/pdf", RUNS_PDF)
    scan = bench_ocr(render_scan_png(SAMPLES[0]), "image/png", RUNS_SCAN)

    print()
    print(f"{'measure':<34}{'median':>12}{'p95':>12}   reference")
    print("-" * 96)
    print(f"{'photo submit (%.1f MB JPEG)' % photo['size_mb']:<34}{photo['median_ms']:>10.0f}ms{photo['p95_ms']:>10.0f}ms"
          f"   {REFERENCES['photo_5mb_submit'][0]}  ({REFERENCES['photo_5mb_submit'][1]})")
    print(f"{'  Python heap peak during submit':<34}{photo['peak_mb']:>10.1f}MB")
    print(f"{'OCR one-page text PDF':<34}{pdf['median_ms']:>10.1f}ms{pdf['p95_ms']:>10.1f}ms"
          f"   {REFERENCES['ocr_text_pdf'][0]}  ({REFERENCES['ocr_text_pdf'][1]}; parse included)")
    print(f"{'OCR one-page scan (200 dpi)':<34}{scan['median_ms']:>10.0f}ms{scan['p95_ms']:>10.0f}ms"
          f"   {REFERENCES['ocr_scan'][0]}  ({REFERENCES['ocr_scan'][1]})")
    print(f"\n(text PDF source={pdf['source']} amount={pdf['amount']}; scan source={scan['source']} amount={scan['amount']})")


if __name__ == "__main__":
    main()
