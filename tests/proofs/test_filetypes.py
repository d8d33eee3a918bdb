"""proofs.filetypes: the type comes from magic bytes, never from the name or the client."""

from __future__ import annotations

import io
import random
import zipfile

import pytest
from PIL import Image

from kobatela.core.errors import UnsupportedMediaType
from proofs.filetypes import (
    ALLOWED_TYPES,
    DOCUMENT_TYPES,
    EXTENSIONS,
    IMAGE_TYPES,
    JPEG,
    PDF,
    PNG,
    SNIFF_BYTES,
    WEBP,
    sniff,
    sniff_file,
    sniff_or_raise,
)

MINIMAL_PDF = (
    b"%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def pillow_bytes(fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, fmt, **params)
    return buf.getvalue()


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("evil.html", "<script>alert(1)</script>")
    return buf.getvalue()


REAL_FILES = {
    "jpeg": (pillow_bytes("JPEG"), JPEG),
    "png": (pillow_bytes("PNG"), PNG),
    "webp_lossy": (pillow_bytes("WEBP", quality=50), WEBP),
    "webp_lossless": (pillow_bytes("WEBP", lossless=True), WEBP),
    "webp_extended": (pillow_bytes("WEBP", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"), WEBP),
    "pdf": (MINIMAL_PDF, PDF),
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_each_supported_type_is_recognised(name):
    data, expected = REAL_FILES[name]
    assert sniff(data) == expected
    assert sniff(data[:SNIFF_BYTES]) == expected  # SNIFF_BYTES really is enough


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("invoice.pdf", REAL_FILES["png"][0], PNG),  # a PNG calling itself a PDF
        ("photo.png", REAL_FILES["jpeg"][0], JPEG),
        ("scan.jpg", MINIMAL_PDF, PDF),
        ("photo.jpg", b"<!DOCTYPE html><html><body>hi</body></html>", None),  # HTML calling itself a JPEG
        ("invoice.pdf", zip_bytes(), None),
        ("photo.webp", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", None),  # RIFF but WAVE
    ],
)
def test_magic_bytes_win_over_a_lying_extension(tmp_path, filename, data, expected):
    path = tmp_path / filename
    path.write_bytes(data)
    with path.open("rb") as fh:
        assert sniff(fh.read(SNIFF_BYTES)) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",  # too short to be sure
        b"\x89PNG\r\n",  # truncated signature
        b"<html><head><title>x</title></head></html>",
        b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00",
        b"BM6\x00\x00\x00\x00\x00\x00\x006\x00\x00\x00",
        b"II*\x00\x08\x00\x00\x00",  # TIFF
        b"\n%PDF-1.4\n",  # PDF header not at offset 0 (polyglot shape)
        b"%PDF-x\n",  # no version digit
        b"RIFF\x00\x00\x00\x00WEBPJUNK",  # RIFF/WEBP without a VP8 chunk
        b"\x00" * 64,
        b"#!/bin/sh\nrm -rf /\n",
    ],
)
def test_other_content_is_refused(data):
    assert sniff(data) is None


def test_zip_and_office_files_are_refused():
    assert sniff(zip_bytes()) is None


def test_random_bytes_are_refused():
    rng = random.Random(20240501)
    for _ in range(500):
        head = rng.randbytes(SNIFF_BYTES)
        if head[:3] == b"\xff\xd8\xff":  # astronomically unlikely; keep the test honest
            continue
        assert sniff(head) is None, head


def test_type_constants():
    assert IMAGE_TYPES == {JPEG, PNG, WEBP}
    assert DOCUMENT_TYPES == {PDF}
    assert not IMAGE_TYPES & DOCUMENT_TYPES
    assert ALLOWED_TYPES == IMAGE_TYPES | DOCUMENT_TYPES
    assert set(EXTENSIONS) == ALLOWED_TYPES
    assert SNIFF_BYTES == 16


def test_sniff_file_keeps_the_position():
    data = REAL_FILES["png"][0]
    fh = io.BytesIO(b"xx" + data)
    fh.seek(2)
    assert sniff_file(fh) == PNG
    assert fh.tell() == 2


def test_sniff_or_raise():
    assert sniff_or_raise(MINIMAL_PDF) == PDF
    with pytest.raises(UnsupportedMediaType) as exc:
        sniff_or_raise(b"<html>")
    assert exc.value.status == 415
    assert exc.value.code == "unsupported_media_type"
    assert exc.value.details == {"detected": None, "allowed": sorted(ALLOWED_TYPES)}

    # a real PDF where only photos are accepted
    with pytest.raises(UnsupportedMediaType) as exc:
        sniff_or_raise(MINIMAL_PDF, allowed=IMAGE_TYPES)
    assert exc.value.details["detected"] == PDF
    assert "JPG" in exc.value.message and "PDF" not in exc.value.message
