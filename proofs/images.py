"""Open an uploaded proof image without letting it hurt the process.

:func:`open_image` is the only way proof code should turn bytes into a
``PIL.Image.Image``. It guarantees, in this order:

1. **Size before decode.** The pixel dimensions are read from the container
   header by our own small parser (PNG ``IHDR``, WebP ``VP8X``/``VP8L``/``VP8 ``,
   JPEG ``SOFn`` found by walking the marker segments) and the file is refused
   if ``width * height`` exceeds the limit, *before Pillow sees it*. This matters
   for WebP, whose Pillow plugin creates a libwebp decoder — which allocates
   the whole canvas — inside ``Image.open``. A 50 KB PNG that claims
   20000×20000 is refused in microseconds, with no allocation.
2. **Pillow's limit is ours too.** ``Image.open`` only *warns*
   (``DecompressionBombWarning``) between ``Image.MAX_IMAGE_PIXELS`` and twice
   that. We never touch the global warning filters (``warnings.catch_warnings``
   is not thread-safe on Python 3.11) nor ``Image.MAX_IMAGE_PIXELS``; instead
   the effective limit is ``min(max_pixels, Image.MAX_IMAGE_PIXELS)`` and we
   check ``im.size`` ourselves after ``Image.open`` (which parses headers only)
   and before ``load()``. ``DecompressionBombError`` — and the warning, if a
   filter turned it into an exception (pytest.ini does: ``error::RuntimeWarning``)
   — become the same refusal.
3. **Full decode.** ``load()`` is forced, so a truncated JPEG — which passes
   ``Image.verify()`` — is refused. ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never
   set here and must stay False process-wide.
4. **Only the proof formats.** ``Image.open(..., formats=JPEG/PNG/WEBP)``:
   Pillow's other plugins (some of them with no magic bytes at all, e.g. TGA)
   are never tried.

Refusals (``kobatela.core.errors``):

* ``Unprocessable("image_too_large")`` (422), details ``{"pixels", "max_pixels",
  "width", "height"}``. 422 rather than 413: the *payload* may be 50 KB and well
  inside the upload limit — the body size limit (413, middleware) is a different
  rule. What is refused is a property of the content, understood and rejected
  by a rule, which is this project's definition of 422.
* ``BadRequest("file_corrupt")`` (400) for anything that does not decode.
"""

from __future__ import annotations

import re
import struct
from typing import IO

from PIL import Image

from kobatela.core.errors import BadRequest, DomainError, Unprocessable

#: Pillow format names open_image accepts (matches filetypes.IMAGE_TYPES).
PILLOW_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")

# JPEG start-of-frame markers (C4 DHT, C8 JPG and CC DAC are not SOFs).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers with no length field.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# Stop walking after this many segments (a real JPEG has a couple of dozen).
_JPEG_MAX_SEGMENTS = 1024

_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def header_size(fileobj: IO[bytes]) -> tuple[int, int] | None:
    """(width, height) from the container header, without decoding; None if not found.

    Reads from the current position and puts the position back. For JPEG, walks
    the marker segments up to the first scan and returns the *largest* frame
    declared (a file with several SOFs cannot sneak a big one past a small one).
    """
    start = fileobj.tell()
    try:
        head = fileobj.read(30)
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            if len(head) >= 24 and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            return None
        if head[0:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
            return _webp_size(head)
        if head.startswith(b"\xff\xd8"):
            fileobj.seek(start + 2)
            return _jpeg_size(fileobj)
        return None
    finally:
        fileobj.seek(start)


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":  # extended: canvas size, 24-bit little-endian, minus one
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless: 14-bit fields, minus one
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy key frame
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_size(fp: IO[bytes]) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for _ in range(_JPEG_MAX_SEGMENTS):
        byte = fp.read(1)
        if byte != b"\xff":
            return best
        marker = 0xFF
        while marker == 0xFF:  # fill bytes
            b = fp.read(1)
            if not b:
                return best
            marker = b[0]
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI / SOS: no more frame headers before the data
            return best
        raw = fp.read(2)
        if len(raw) < 2:
            return best
        (length,) = struct.unpack(">H", raw)
        if length < 2:
            return best
        if marker in _JPEG_SOF:
            body = fp.read(5)
            if len(body) < 5:
                return best
            _precision, height, width = struct.unpack(">BHH", body)
            if best is None or width * height > best[0] * best[1]:
                best = (width, height)
            fp.seek(length - 2 - 5, 1)
        else:
            fp.seek(length - 2, 1)
    return best


def effective_max_pixels(max_pixels: int) -> int:
    """The limit actually enforced: ours, or Pillow's global one if that is lower."""
    pillow = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow is None else min(max_pixels, int(pillow))


def _too_large(pixels: int | None, limit: int, size: tuple[int, int] | None = None) -> Unprocessable:
    details: dict = {"pixels": pixels, "max_pixels": limit}
    if size is not None:
        details["width"], details["height"] = size
    shown = f"{size[0]}×{size[1]} pixels" if size else (f"{pixels} pixels" if pixels else "too many pixels")
    return Unprocessable(
        "image_too_large",
        f"The image is {shown}; the limit is {limit} pixels.",
        details=details,
    )


def _corrupt() -> BadRequest:
    return BadRequest("file_corrupt", "The image file is damaged or incomplete and cannot be read.")


def _check(size: tuple[int, int], limit: int) -> None:
    width, height = size
    pixels = max(1, width) * max(1, height)  # same arithmetic as Pillow's own check
    if pixels > limit:
        raise _too_large(pixels, limit, (width, height))


def open_image(fileobj: IO[bytes], *, max_pixels: int) -> Image.Image:
    """Open, size-check and fully decode a JPEG/PNG/WebP; see the module docstring.

    ``fileobj`` must be seekable; the whole file is read from offset 0 (as
    Pillow does), whatever its current position. The returned image is loaded
    (its pixels are in memory), so it no longer needs ``fileobj``;
    ``image.getexif()`` still works.
    """
    if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels <= 0:
        raise ValueError("max_pixels must be a positive int")
    limit = effective_max_pixels(max_pixels)

    fileobj.seek(0)
    try:
        size = header_size(fileobj)
    except (OSError, ValueError, struct.error):
        size = None
    fileobj.seek(0)
    if size is not None:
        _check(size, limit)  # 1. before Pillow allocates anything

    try:
        image = Image.open(fileobj, formats=PILLOW_FORMATS)  # parses headers, no decode
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        match = _BOMB_PIXELS.search(str(exc))
        raise _too_large(int(match.group(1)) if match else None, limit) from exc
    except (DomainError, MemoryError):
        raise
    except Exception as exc:  # UnidentifiedImageError, SyntaxError, struct.error, ...
        raise _corrupt() from exc

    try:
        _check(image.size, limit)  # 2. Pillow's view of the size, still before decoding
        image.load()  # 3. full decode: truncated data raises here
    except DomainError:
        image.close()
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        image.close()
        raise _too_large(image.size[0] * image.size[1], limit, image.size) from exc
    except MemoryError:
        image.close()
        raise
    except Exception as exc:  # OSError("image file is truncated"), zlib errors, ...
        image.close()
        raise _corrupt() from exc
    return image
