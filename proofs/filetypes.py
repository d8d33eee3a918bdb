"""What kind of file is this? Decided from the file's first bytes only.

The client's file name and ``Content-Type`` are claims, not facts: a ``.jpg``
can hold HTML, a ``.pdf`` can hold a ZIP. Everything in the proof pipeline
(which validator runs, which extension the object is stored under, which
``Content-Type`` it is later served with) is keyed on :func:`sniff`, which looks
at magic bytes and nothing else.

Pure Python: no Django, no Pillow. Usage::

    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    content_type = sniff_or_raise(head)     # UnsupportedMediaType (415) if unknown
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from kobatela.core.errors import UnsupportedMediaType

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
PDF = "application/pdf"

#: Types that go through the image pipeline (Pillow decode, EXIF, geofence).
IMAGE_TYPES: frozenset[str] = frozenset({JPEG, PNG, WEBP})
#: Types that go through the document pipeline (invoices).
DOCUMENT_TYPES: frozenset[str] = frozenset({PDF})
#: Everything :func:`sniff` can return.
ALLOWED_TYPES: frozenset[str] = IMAGE_TYPES | DOCUMENT_TYPES

#: Canonical extension to store each type under (never the client's).
EXTENSIONS: dict[str, str] = {JPEG: "jpg", PNG: "png", WEBP: "webp", PDF: "pdf"}

#: How many leading bytes :func:`sniff` needs (WebP: ``RIFF....WEBPVP8?``).
SNIFF_BYTES = 16

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")


def sniff(head: bytes) -> str | None:
    """Return the MIME type decided by the magic bytes in ``head``, or None.

    ``head`` should be the first :data:`SNIFF_BYTES` bytes (more is fine, fewer
    may give None). Recognised:

    * JPEG: ``FF D8 FF`` (SOI followed by the next marker's 0xFF).
    * PNG: the full 8-byte signature ``89 50 4E 47 0D 0A 1A 0A``.
    * WebP: ``RIFF`` <size> ``WEBP`` then a ``VP8 ``/``VP8L``/``VP8X`` chunk.
    * PDF: ``%PDF-`` *at offset 0* followed by a version digit. (Readers accept
      the header anywhere in the first KiB; we do not, which shuts out
      polyglots that are, say, HTML or ZIP up front and PDF further down.)
    """
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head[0:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:16] in _WEBP_CHUNKS:
        return WEBP
    if head.startswith(b"%PDF-") and head[5:6].isdigit():
        return PDF
    return None


def sniff_file(fileobj: IO[bytes]) -> str | None:
    """:func:`sniff` the next bytes of a seekable file, leaving its position unchanged."""
    pos = fileobj.tell()
    try:
        head = fileobj.read(SNIFF_BYTES)
    finally:
        fileobj.seek(pos)
    return sniff(head or b"")


def sniff_or_raise(head: bytes, allowed: Iterable[str] = ALLOWED_TYPES) -> str:
    """:func:`sniff`, refusing with ``UnsupportedMediaType`` (415) unless the type is in ``allowed``."""
    allowed = frozenset(allowed)
    content_type = sniff(head)
    if content_type is None or content_type not in allowed:
        raise UnsupportedMediaType(
            "unsupported_media_type",
            "This file type is not accepted. Send "
            + ", ".join(sorted(EXTENSIONS[t].upper() for t in allowed if t in EXTENSIONS))
            + ".",
            details={"detected": content_type, "allowed": sorted(allowed)},
        )
    return content_type
