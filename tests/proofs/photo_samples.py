"""Geotagged photos made in the tests with Pillow's EXIF API (no fixtures on disk)."""

from __future__ import annotations

import io
import os
from datetime import datetime, timezone

from PIL import Image

from proofs.exif import EXIF_IFD, GPS_IFD
from proofs.samples import CAMERA, geotagged_jpeg

__all__ = ["CAMERA", "big_jpeg", "geotagged_jpeg"]


def big_jpeg(target_bytes: int) -> bytes:
    """A real JPEG of about ``target_bytes`` (noise compresses badly)."""
    side = int((target_bytes / 1.2) ** 0.5 / 1.2)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def scene(seed: int, size: tuple[int, int] = (1200, 900)) -> Image.Image:
    """A picture with structure (shapes, soft edges), like a site photo to a
    perceptual hash; the same seed gives the same picture."""
    import random

    from PIL import ImageDraw, ImageFilter

    rnd = random.Random(seed)
    image = Image.new("RGB", size, tuple(rnd.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = rnd.randrange(size[0]), rnd.randrange(size[1])
        w, h = rnd.randrange(size[0] // 30, size[0] // 2), rnd.randrange(size[1] // 20, size[1] // 2)
        colour = tuple(rnd.randrange(256) for _ in range(3))
        (draw.ellipse if rnd.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
    return image.filter(ImageFilter.GaussianBlur(3))


def reworked(image: Image.Image, *, crop: float = 0.05, corner: str = "top-left", scale: float = 2 / 3,
             quality: int = 60) -> Image.Image:
    """What a re-user does to a picture: crop ``crop`` of each dimension on one
    side (or centred), resize, re-compress as JPEG."""
    w, h = image.size
    dx, dy = int(w * crop), int(h * crop)
    box = {"top-left": (dx, dy, w, h), "bottom-right": (0, 0, w - dx, h - dy),
           "centred": (dx // 2, dy // 2, w - dx + dx // 2, h - dy + dy // 2)}[corner]
    smaller = image.crop(box).resize((int(w * scale), int(h * scale)))
    buf = io.BytesIO()
    smaller.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def plain_jpeg(size: tuple[int, int] = (96, 64)) -> bytes:
    """A photo with no EXIF at all (a screenshot, a messaging-app copy)."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def jpeg_with_gps(gps: dict, captured_at: datetime, *, size: tuple[int, int] = (96, 64)) -> bytes:
    """A photo with a capture time, a camera and exactly this GPS IFD (for broken tags)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = CAMERA
    utc = captured_at.astimezone(timezone.utc)
    exif[EXIF_IFD] = {0x9003: utc.strftime("%Y:%m:%d %H:%M:%S"), 0x9011: "+00:00"}
    exif[GPS_IFD] = gps
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif, quality=85)
    return buf.getvalue()
