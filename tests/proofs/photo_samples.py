"""Geotagged photos made in the tests with Pillow's EXIF API (no fixtures on disk)."""

from __future__ import annotations

import io
import os

from PIL import Image

from proofs.samples import geotagged_jpeg

__all__ = ["big_jpeg", "geotagged_jpeg"]


def big_jpeg(target_bytes: int) -> bytes:
    """A real JPEG of about ``target_bytes`` (noise compresses badly)."""
    side = int((target_bytes / 1.2) ** 0.5 / 1.2)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue()
