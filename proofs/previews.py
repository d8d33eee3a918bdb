"""Small JPEG previews of proofs for the admin: a photo or scan downscaled, or
the first page of a PDF rendered with pdfium.

The stored file is never sent to the reviewer's browser as is: a preview is
re-encoded from decoded pixels (no EXIF, no embedded scripts, no polyglot
tricks), at most ``max_side`` pixels on its longer side. Images are decoded
through :func:`proofs.images.open_image` (pixel limit before decoding), PDF
pages are rendered at a scale computed from the page size, so an absurd
page size cannot make a huge bitmap.

A proof's file never changes (its SHA-256 is unique), so a preview is cached
under that hash for a long time.
"""

from __future__ import annotations

import io
import logging
import threading

from django.core.cache import cache
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw, ImageOps

from kobatela.core.errors import DomainError
from kobatela.core.shared_cache import cache_or
from proofs.images import open_image

logger = logging.getLogger(__name__)

#: Sizes the admin asks for: a queue thumbnail and the detail page's picture.
SIZES = {"thumb": 160, "large": 1000}
CACHE_SECONDS = 7 * 24 * 3600
JPEG_QUALITY = 80
IMAGE_MAX_PIXELS = 50_000_000  # the same limit as uploads (proofs.services)
# pdfium is not thread-safe: one render at a time per process.
_PDFIUM_LOCK = threading.Lock()


class PreviewUnavailable(Exception):
    """The file is missing or cannot be drawn."""


def _render_pdf_first_page(data: bytes, max_side: int) -> Image.Image:
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise PreviewUnavailable(f"pdf: {exc}") from exc
        try:
            if len(pdf) < 1:
                raise PreviewUnavailable("pdf has no pages")
            page = pdf[0]
            width, height = page.get_size()  # points
            if width <= 0 or height <= 0:
                raise PreviewUnavailable("pdf page has no size")
            scale = max_side / max(width, height)
            bitmap = page.render(scale=scale)
            image = bitmap.to_pil().convert("RGB")  # copies the pixels out of pdfium's buffer
            page.close()
            return image
        finally:
            pdf.close()


def _render_image(data: bytes, max_side: int) -> Image.Image:
    try:
        image = open_image(io.BytesIO(data), max_pixels=IMAGE_MAX_PIXELS)
    except DomainError as exc:
        raise PreviewUnavailable(exc.code) from exc
    image = ImageOps.exif_transpose(image)  # the way the camera held it
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image.convert("RGB")


def render_preview(data: bytes, *, content_type: str, max_side: int) -> bytes:
    """JPEG bytes of the picture (images) or first page (PDF), longer side ≤ max_side."""
    if content_type == "application/pdf":
        image = _render_pdf_first_page(data, max_side)
    else:
        image = _render_image(data, max_side)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def placeholder(max_side: int, text: str = "no preview") -> bytes:
    """A grey square saying there is nothing to show (missing or unreadable file)."""
    side = min(max_side, 160)
    image = Image.new("RGB", (side, side), (230, 230, 230))
    ImageDraw.Draw(image).text((8, side // 2 - 6), text, fill=(90, 90, 90))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def proof_preview(*, sha256: str, file_name: str, content_type: str, size: str) -> tuple[bytes, bool]:
    """(JPEG bytes, is_real_preview) for a proof, from the cache or rendered now.
    A placeholder is not cached: the file may come back."""
    max_side = SIZES[size]
    key = f"proof-preview:v1:{sha256}:{max_side}"
    cached = cache_or(lambda: cache.get(key), fallback=None, when_down="preview rendered from the file")
    if cached is not None:
        return cached, True
    try:
        with default_storage.open(file_name, "rb") as handle:
            data = handle.read()
        jpeg = render_preview(data, content_type=content_type, max_side=max_side)
    except (OSError, PreviewUnavailable) as exc:
        logger.warning("proof preview unavailable", extra={"sha256": sha256, "reason": str(exc)[:200]})
        return placeholder(max_side), False
    cache_or(lambda: cache.set(key, jpeg, CACHE_SECONDS), fallback=None, when_down="preview not cached")
    return jpeg, True
