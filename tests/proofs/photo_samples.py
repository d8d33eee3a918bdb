"""Geotagged photos made in the tests with Pillow's EXIF API (no fixtures on disk)."""

from __future__ import annotations

import io
import os
from datetime import datetime, timezone
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


def big_jpeg(target_bytes: int) -> bytes:
    """A real JPEG of about ``target_bytes`` (noise compresses badly)."""
    side = int((target_bytes / 1.2) ** 0.5 / 1.2)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue()
