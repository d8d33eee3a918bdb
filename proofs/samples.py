"""Sample geotagged photos: the sandbox's (``scripts/sandbox_photo.py``, the
quickstart) and the tests'. Pure Pillow, no Django.

A photo carries its capture time in EXIF (``DateTimeOriginal`` in UTC, with
``OffsetTimeOriginal`` ``+00:00``) and its GPS position; random pixels make
every call a new file (a new SHA-256: the same file twice is a duplicate proof).
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timezone
from decimal import Decimal

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from proofs.exif import EXIF_IFD, GPS_IFD

MICRO = 10**6


def _rational_degrees(value: Decimal) -> tuple[IFDRational, IFDRational, IFDRational]:
    micro = int((abs(value) * MICRO).to_integral_value())
    return IFDRational(micro, MICRO), IFDRational(0, 1), IFDRational(0, 1)


def geotagged_jpeg(lat: Decimal | None, lng: Decimal | None, captured_at: datetime | None, *,
                   size: tuple[int, int] = (96, 64), fmt: str = "JPEG") -> bytes:
    """A small photo with capture time (UTC offset written) and GPS."""
    exif = Image.Exif()
    if captured_at is not None:
        utc = captured_at.astimezone(timezone.utc)
        exif[EXIF_IFD] = {0x9003: utc.strftime("%Y:%m:%d %H:%M:%S"), 0x9011: "+00:00"}
    if lat is not None and lng is not None:
        exif[GPS_IFD] = {
            1: "N" if lat >= 0 else "S", 2: _rational_degrees(lat),
            3: "E" if lng >= 0 else "W", 4: _rational_degrees(lng),
        }
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    image.save(buf, fmt, exif=exif, quality=85)
    return buf.getvalue()
