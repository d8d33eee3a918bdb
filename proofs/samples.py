"""Sample geotagged photos: the sandbox's (``scripts/sandbox_photo.py``, the
quickstart) and the tests'. Pure Pillow, no Django.

A photo carries its capture time in EXIF (``DateTimeOriginal`` in UTC, with
``OffsetTimeOriginal`` ``+00:00``), its GPS position and the camera's make
and model (a photo without them never pays by itself); random pixels make
every call a new file (a new SHA-256: the same file twice is a duplicate proof).
"""

from __future__ import annotations

import io
import os
from datetime import date, datetime, timezone
from decimal import Decimal

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from proofs.exif import EXIF_IFD, GPS_IFD

MICRO = 10**6
CAMERA = ("TECNO", "CAMON 20")


def _rational_degrees(value: Decimal) -> tuple[IFDRational, IFDRational, IFDRational]:
    micro = int((abs(value) * MICRO).to_integral_value())
    return IFDRational(micro, MICRO), IFDRational(0, 1), IFDRational(0, 1)


def geotagged_jpeg(lat: Decimal | None, lng: Decimal | None, captured_at: datetime | None, *,
                   size: tuple[int, int] = (96, 64), fmt: str = "JPEG", camera: tuple[str, str] | None = CAMERA,
                   software: str | None = None, image: Image.Image | None = None, quality: int = 85) -> bytes:
    """A small photo with capture time (UTC offset written), GPS and the camera's
    make and model; random pixels (unless ``image`` is given) so that every call
    gives a new SHA-256 and an unrelated perceptual hash."""
    exif = Image.Exif()
    if camera is not None:
        exif[0x010F], exif[0x0110] = camera
    if software is not None:
        exif[0x0131] = software
    if captured_at is not None:
        utc = captured_at.astimezone(timezone.utc)
        exif[EXIF_IFD] = {0x9003: utc.strftime("%Y:%m:%d %H:%M:%S"), 0x9011: "+00:00"}
    if lat is not None and lng is not None:
        exif[GPS_IFD] = {
            1: "N" if lat >= 0 else "S", 2: _rational_degrees(lat),
            3: "E" if lng >= 0 else "W", 4: _rational_degrees(lng),
        }
    if image is None:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    image.save(buf, fmt, exif=exif, quality=quality)
    return buf.getvalue()


def invoice_pdf(*, amount: Decimal, currency: str, issued: date, number: str | None = None) -> bytes:
    """A one-page PDF invoice with a text layer (Helvetica), written by hand:
    header, the five objects, the cross-reference table with exact offsets."""
    number = number or f"SBX-{os.urandom(3).hex().upper()}"  # a new file (SHA-256) every time
    lines = ["INVOICE", f"Invoice number: {number}", f"Date: {issued.isoformat()}", "Supplier: Sandbox Supplies",
             f"Total: {amount} {currency}"]
    text = "BT /F1 14 Tf 72 720 Td 20 TL " + " ".join(
        "(" + line.replace("\\\\", "").replace("(", "").replace(")", "") + ") Tj T*" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode("latin-1")),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for index, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (index, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
