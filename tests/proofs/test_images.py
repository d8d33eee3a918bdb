"""proofs.images.open_image: size before decode, full decode, only proof formats."""

from __future__ import annotations

import io
import random
import struct
import time
import warnings
import zlib

import pytest
from PIL import Image, ImageFile

from kobatela.core.errors import BadRequest, Unprocessable
from proofs import images
from proofs.images import header_size, open_image

LIMIT = 40_000_000  # a realistic setting: 40 MP


# --------------------------------------------------------------------------- helpers


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_png(width: int, height: int) -> bytes:
    """A *valid* 1-bit grayscale PNG of all-black rows, built without ever holding the pixels.

    20000×20000 is 400 Mpx (≈ 1.2 GB as RGB once decoded) but compresses to ~60 KB.
    """
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte + packed bits
    rows_per_block = max(1, 1_000_000 // len(row))
    compressor = zlib.compressobj(9)
    idat = []
    remaining = height
    while remaining:
        n = min(rows_per_block, remaining)
        idat.append(compressor.compress(row * n))
        remaining -= n
    idat.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(idat)) + png_chunk(b"IEND", b"")


def encoded(fmt: str, size=(64, 48), mode="RGB", noise=False, **params) -> bytes:
    if noise:
        rng = random.Random(7)
        image = Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode)))
    else:
        image = Image.new(mode, size, (10, 120, 200) if mode == "RGB" else 128)
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF header's dimensions (the scan data stays that of the small image)."""
    i = 2
    while True:
        assert data[i] == 0xFF
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC1, 0xC2):
            return data[: i + 5] + struct.pack(">HH", height, width) + data[i + 9 :]
        i += 2 + length


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    return blank_png(20_000, 20_000)


# --------------------------------------------------------------------------- happy path


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("JPEG", {}), ("PNG", {}), ("WEBP", {"quality": 60}), ("WEBP", {"lossless": True})],
)
def test_valid_images_open_fully_loaded(fmt, params):
    data = encoded(fmt, **params)
    image = open_image(io.BytesIO(data), max_pixels=LIMIT)
    assert image.format == fmt
    assert image.size == (64, 48)
    assert image.im is not None  # pixels decoded
    assert header_size(io.BytesIO(data)) == (64, 48)


def test_reads_the_whole_file_whatever_the_position():
    data = encoded("PNG")
    fh = io.BytesIO(data)
    fh.seek(0, io.SEEK_END)  # e.g. after the upload was hashed
    assert open_image(fh, max_pixels=LIMIT).size == (64, 48)


def test_limit_is_inclusive():
    data = encoded("PNG", size=(100, 50))
    assert open_image(io.BytesIO(data), max_pixels=5000).size == (100, 50)
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(data), max_pixels=4999)
    assert exc.value.code == "image_too_large"
    assert exc.value.details == {"pixels": 5000, "max_pixels": 4999, "width": 100, "height": 50}


# --------------------------------------------------------------------------- bombs


def test_bomb_builder_makes_valid_pngs():
    image = open_image(io.BytesIO(blank_png(301, 200)), max_pixels=LIMIT)  # same code path, small size
    assert image.size == (301, 200)
    assert image.getextrema() == (0, 0)


def test_pixel_bomb_png_is_refused_fast_before_decoding(bomb_png):
    assert len(bomb_png) < 200_000  # tiny file ...
    assert header_size(io.BytesIO(bomb_png)) == (20_000, 20_000)  # ... huge image

    started = time.perf_counter()
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(bomb_png), max_pixels=LIMIT)
    elapsed = time.perf_counter() - started

    assert elapsed < 1.0, elapsed  # safety guard; in practice microseconds
    assert exc.value.status == 422
    assert exc.value.code == "image_too_large"
    assert exc.value.details["pixels"] == 400_000_000
    assert exc.value.details["max_pixels"] == LIMIT


def test_pillow_global_limit_also_applies(bomb_png):
    """Asking for more than Pillow allows does not let a bomb through."""
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(bomb_png), max_pixels=10**12)
    assert exc.value.code == "image_too_large"
    assert exc.value.details["max_pixels"] == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("JPEG", {}), ("JPEG", {"progressive": True})],
)
def test_jpeg_header_size_is_checked_before_decoding(fmt, params):
    """A small JPEG whose SOF claims 60000×60000: refused as too large, never decoded (which would fail)."""
    data = patch_jpeg_size(encoded(fmt, **params), 60_000, 60_000)
    assert header_size(io.BytesIO(data)) == (60_000, 60_000)
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(data), max_pixels=LIMIT)
    assert exc.value.details["pixels"] == 3_600_000_000


def test_jpeg_frame_header_found_after_large_metadata_segments():
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: a ~60 KB APP1 before the SOF
    data = encoded("JPEG", size=(300, 200), exif=exif, comment=b"c" * 30_000)
    assert data.index(b"\xff\xc0") > 80_000
    assert header_size(io.BytesIO(data)) == (300, 200)
    with pytest.raises(Unprocessable):
        open_image(io.BytesIO(data), max_pixels=300 * 200 - 1)


def test_png_header_size_is_checked_before_decoding():
    data = bytearray(encoded("PNG"))
    data[16:24] = struct.pack(">II", 50_000, 50_000)  # IHDR CRC is now wrong: Pillow would call it corrupt
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(bytes(data)), max_pixels=LIMIT)
    assert exc.value.code == "image_too_large"


def test_webp_canvas_size_is_checked_before_pillow_allocates_it():
    # VP8X (extended) header: canvas width-1 / height-1 as 24-bit little-endian at 24 / 27.
    data = bytearray(encoded("WEBP", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"))
    assert data[12:16] == b"VP8X"
    data[24:27] = (16_383 - 1).to_bytes(3, "little")
    data[27:30] = (16_383 - 1).to_bytes(3, "little")
    assert header_size(io.BytesIO(bytes(data))) == (16_383, 16_383)
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(bytes(data)), max_pixels=LIMIT)
    assert exc.value.details["pixels"] == 16_383 * 16_383


@pytest.mark.parametrize("params", [{"quality": 60}, {"lossless": True}])
def test_webp_simple_formats_are_size_checked(params):
    data = encoded("WEBP", size=(640, 480), **params)
    assert header_size(io.BytesIO(data)) == (640, 480)
    with pytest.raises(Unprocessable):
        open_image(io.BytesIO(data), max_pixels=640 * 480 - 1)


def test_pillow_warning_becomes_the_refusal_without_our_parser(monkeypatch):
    """If our header parser finds nothing, Pillow's size (read before decoding) is still checked."""
    monkeypatch.setattr(images, "header_size", lambda fileobj: None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encoded("PNG", size=(40, 40))  # 1600 px: Pillow only *warns* (< 2 × 1000)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(Unprocessable) as exc:
            open_image(io.BytesIO(data), max_pixels=10**9)
    assert exc.value.details == {"pixels": 1600, "max_pixels": 1000, "width": 40, "height": 40}

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # as pytest.ini does for RuntimeWarning
        with pytest.raises(Unprocessable) as exc:
            open_image(io.BytesIO(data), max_pixels=10**9)
    assert exc.value.code == "image_too_large"
    assert exc.value.details["pixels"] == 1600


def test_pillow_bomb_error_becomes_the_refusal_without_our_parser(monkeypatch, bomb_png):
    monkeypatch.setattr(images, "header_size", lambda fileobj: None)
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(bomb_png), max_pixels=10**12)
    assert exc.value.code == "image_too_large"
    assert exc.value.details["pixels"] == 400_000_000


def test_own_limit_below_pillows_is_checked_without_our_parser(monkeypatch, bomb_png):
    monkeypatch.setattr(images, "header_size", lambda fileobj: None)
    data = encoded("PNG", size=(200, 100))
    with pytest.raises(Unprocessable) as exc:
        open_image(io.BytesIO(data), max_pixels=19_999)
    assert exc.value.details["pixels"] == 20_000


# --------------------------------------------------------------------------- corrupt files


def test_truncated_jpeg_passes_verify_but_is_refused():
    data = encoded("JPEG", size=(256, 256), noise=True, quality=95)
    truncated = data[: len(data) * 6 // 10]

    Image.open(io.BytesIO(truncated)).verify()  # the trap: verify() says nothing for JPEG

    with pytest.raises(BadRequest) as exc:
        open_image(io.BytesIO(truncated), max_pixels=LIMIT)
    assert exc.value.status == 400
    assert exc.value.code == "file_corrupt"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_truncated_png_and_webp_are_refused(fmt):
    data = encoded(fmt, size=(256, 256), noise=True)
    with pytest.raises(BadRequest) as exc:
        open_image(io.BytesIO(data[: len(data) // 2]), max_pixels=LIMIT)
    assert exc.value.code == "file_corrupt"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8\xff\xe0" + bytes(200),
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"<html>not an image</html>",
        random.Random(3).randbytes(5000),
        encoded("GIF", mode="L"),  # a real image, but not a proof format
        encoded("BMP"),
        encoded("TIFF"),
    ],
    ids=["empty", "jpeg-soi-zeros", "png-sig-zeros", "html", "random", "gif", "bmp", "tiff"],
)
def test_undecodable_or_foreign_files_are_corrupt(data):
    with pytest.raises(BadRequest) as exc:
        open_image(io.BytesIO(data), max_pixels=LIMIT)
    assert exc.value.code == "file_corrupt"


def test_corrupt_png_data_is_refused():
    data = bytearray(encoded("PNG", size=(128, 128), noise=True))
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 60] = bytes(20)  # damage the compressed stream (CRC now wrong too)
    with pytest.raises(BadRequest):
        open_image(io.BytesIO(bytes(data)), max_pixels=LIMIT)


# --------------------------------------------------------------------------- hygiene


def test_global_pillow_state_untouched(bomb_png):
    before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS, list(warnings.filters))
    truncated = encoded("JPEG", size=(256, 256), noise=True)[:3000]
    for data in (bomb_png, truncated, encoded("PNG")):
        try:
            open_image(io.BytesIO(data), max_pixels=LIMIT)
        except (BadRequest, Unprocessable):
            pass
    assert (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS, list(warnings.filters)) == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("bad", [0, -1, 1.5, None, True])
def test_max_pixels_must_be_a_positive_int(bad):
    with pytest.raises(ValueError):
        open_image(io.BytesIO(encoded("PNG")), max_pixels=bad)


def test_header_size_restores_position_and_handles_junk():
    fh = io.BytesIO(b"\xff\xd8" + b"\xff\xe1\x00\x01")  # segment length < 2
    assert header_size(fh) is None
    assert fh.tell() == 0
    assert header_size(io.BytesIO(b"\xff\xd8\xff\xda")) is None  # scan before any frame header
    assert header_size(io.BytesIO(b"hello")) is None
