"""Text extraction from proof documents: PDF text layer first, Tesseract OCR
for scans and photos. Pure Python, no Django; callers pass configuration in.

``extract_text(data, content_type=..., languages="fra+eng") -> OcrResult``

PDFs
    Each page (first :data:`MAX_PAGES`) is read with pypdf in layout mode
    (columns kept apart by runs of spaces, which ``proofs.invoice`` uses).
    A page whose text layer has real text (:data:`MIN_TEXT_CHARS`
    alphanumerics) is used as is; other pages are OCR'd: a page made of a
    single embedded scan is OCR'd from that image at its native resolution
    (pypdfium2), anything else is rendered at :data:`RENDER_DPI`.
    ``source`` is ``"tesseract"`` as soon as one page needed OCR.
Images
    Decoded with Pillow (EXIF orientation applied, multi-frame TIFFs paged),
    then OCR'd.
OCR
    Greyscale, uneven lighting divided out (phone photos: :func:`_flatten_lighting`),
    ``MedianFilter(3)`` (removes scanner speckle without eroding
    strokes), no upscaling except a 2x for very small images, a downscale for
    huge photos. Tesseract runs ``--psm 4 -c preserve_interword_spaces=1``
    (single column of variable-size text; keeps column gaps). When that text
    yields no invoice amount, a second pass with ``--psm 6`` (uniform block)
    is tried and kept if it does yield one.

Errors: :class:`OcrUnavailable` when OCR is needed but the Tesseract binary or
a requested language is missing (an ops problem: retry later);
:class:`OcrFailed` when the input cannot be read (a user problem).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import lru_cache

# Tesseract's OpenMP threads fight each other (and the other workers) on small
# machines: with OMP_THREAD_LIMIT=1 a page takes ~1 s instead of ~3.7 s on 2
# cores. Workers set it; this default covers shells, tests and scripts. It must
# be in os.environ before pytesseract spawns tesseract (inherited env).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

__all__ = [
    "OcrError",
    "OcrUnavailable",
    "OcrFailed",
    "OcrResult",
    "tesseract_available",
    "extract_text",
    "MAX_PAGES",
]

MAX_PAGES = 5
MIN_TEXT_CHARS = 20  # alphanumerics for a page's text layer to count as "real text"
RENDER_DPI = 300  # for pages without a single embedded scan
TESSERACT_TIMEOUT_S = 60  # per page and pass
MAX_IMAGE_SIDE = 4200  # px; bigger photos are downscaled (time, memory)
MIN_IMAGE_SIDE = 1000  # px; smaller images get a single 2x upscale

PSM_PRIMARY = "--psm 4 -c preserve_interword_spaces=1"
PSM_FALLBACK = "--psm 6"

PDF_TYPES = {"application/pdf", "application/x-pdf"}


class OcrError(Exception):
    """Base class of OCR errors."""


class OcrUnavailable(OcrError):
    """Tesseract (or a requested language pack) is not installed."""


class OcrFailed(OcrError):
    """The document could not be read (corrupt, encrypted, unsupported)."""


@dataclass(frozen=True)
class OcrResult:
    text: str
    source: str  # "pdf_text" | "tesseract"
    pages: int  # pages processed (at most MAX_PAGES)
    truncated: bool = False  # the document had more than MAX_PAGES pages


@lru_cache(maxsize=1)
def tesseract_available() -> bool:
    """True when the tesseract binary can be run (cached for the process)."""
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
    except Exception:  # TesseractNotFoundError, OSError, ImportError...
        return False
    return True


@lru_cache(maxsize=1)
def _installed_languages() -> frozenset[str]:
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except Exception:
        return frozenset()


def _require_tesseract(languages: str) -> None:
    if not tesseract_available():
        raise OcrUnavailable("Tesseract OCR is not installed on this worker.")
    installed = _installed_languages()
    missing = [lang for lang in languages.split("+") if lang and installed and lang not in installed]
    if missing:
        raise OcrUnavailable(f"Tesseract language data missing: {', '.join(missing)}.")


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def _prepare(img):
    """Greyscale, sane size, light median filter."""
    from PIL import Image, ImageFilter

    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    img = img.convert("L")
    longest = max(img.size)
    if longest > MAX_IMAGE_SIDE:
        k = MAX_IMAGE_SIDE / longest
        img = img.resize((round(img.width * k), round(img.height * k)), Image.Resampling.LANCZOS)
    elif longest < MIN_IMAGE_SIDE:
        img = img.resize((img.width * 2, img.height * 2), Image.Resampling.LANCZOS)
    return _flatten_lighting(img).filter(ImageFilter.MedianFilter(3))


def _flatten_lighting(img):
    """Divide out the paper's brightness: a phone photo lit from one side (a
    shadow, a lamp) has paper from light grey to dark grey, and Tesseract's
    global threshold then turns a whole side of the page black. The paper
    level is estimated on a 1/16 thumbnail (a max filter removes the ink, a
    blur smooths it), brought back to full size, and each pixel is divided by
    it; a light autocontrast stretches ink to black and paper to white. On an
    evenly lit scan this changes little. ~0.3 s for a 200 dpi A4 page."""
    from PIL import Image, ImageFilter, ImageMath, ImageOps

    w, h = img.size
    small = img.resize((max(1, w // 16), max(1, h // 16)), Image.Resampling.BOX)
    small = small.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(2))
    paper = small.resize((w, h), Image.Resampling.BILINEAR)
    flat = ImageMath.lambda_eval(lambda a: a["ink"] * 255.0 / (a["paper"] + 1.0), ink=img, paper=paper)
    return ImageOps.autocontrast(flat.convert("L"), cutoff=(1, 0))


def _ocr(img, languages: str, config: str) -> str:
    import pytesseract

    try:
        return pytesseract.image_to_string(img, lang=languages, config=config, timeout=TESSERACT_TIMEOUT_S)
    except pytesseract.TesseractNotFoundError as exc:
        tesseract_available.cache_clear()
        raise OcrUnavailable("Tesseract OCR is not installed on this worker.") from exc
    except pytesseract.TesseractError as exc:  # subclass of RuntimeError: caught first
        if "language" in str(exc).lower():
            raise OcrUnavailable("Tesseract language data missing.") from exc
        raise OcrFailed("OCR failed on this page.") from exc
    except RuntimeError as exc:  # pytesseract raises a bare RuntimeError on timeout
        raise OcrFailed("OCR timed out.") from exc


def _has_amount(text: str) -> bool:
    from .invoice import parse_invoice

    return parse_invoice(text).fields.amount is not None


def _ocr_pages(images: list, languages: str) -> list[str]:
    """OCR prepared page images: psm 4 first, psm 6 when no amount comes out."""
    texts = [_clean_page(_ocr(img, languages, PSM_PRIMARY)) for img in images]
    if _has_amount(_join(texts)):
        return texts
    fallback = [_clean_page(_ocr(img, languages, PSM_FALLBACK)) for img in images]
    return fallback if _has_amount(_join(fallback)) else texts


def _clean_page(text: str) -> str:
    """Strip trailing spaces, tesseract's form feed and runs of blank lines."""
    out: list[str] = []
    for line in text.replace("\f", "\n").splitlines():
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def _join(pages: list[str]) -> str:
    return "\n\f\n".join(pages)


def _open_image_pages(data: bytes) -> tuple[list, int]:
    from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        frames = []
        total = getattr(img, "n_frames", 1)
        for n, frame in enumerate(ImageSequence.Iterator(img)):
            if n >= MAX_PAGES:
                break
            frame = ImageOps.exif_transpose(frame.copy())
            frames.append(frame)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise OcrFailed("The image could not be decoded.") from exc
    if not frames:
        raise OcrFailed("The image has no frames.")
    return frames, total


# ---------------------------------------------------------------------------
# PDFs
# ---------------------------------------------------------------------------


def _pdf_text_pages(data: bytes) -> tuple[list[str], int]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:
                raise OcrFailed("The PDF is encrypted.") from exc
            if not ok:
                raise OcrFailed("The PDF is password-protected.")
        total = len(reader.pages)
        texts = []
        for page in reader.pages[:MAX_PAGES]:
            try:
                text = page.extract_text(extraction_mode="layout")
            except Exception:
                # layout mode trips on some odd fonts; plain mode still helps
                try:
                    text = page.extract_text()
                except Exception:
                    text = ""
            texts.append(text or "")
    except OcrFailed:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as exc:
        raise OcrFailed("The PDF could not be parsed.") from exc
    return texts, total


def _real_text(text: str) -> bool:
    """Enough alphanumerics, and not the glyph-id soup of a font without a
    ToUnicode map (private-use / replacement / control characters)."""
    alnum = sum(ch.isalnum() for ch in text)
    junk = sum(
        1 for ch in text if ch == "\ufffd" or "\ue000" <= ch <= "\uf8ff" or (ord(ch) < 32 and ch not in "\n\r\t\f")
    )
    return alnum >= MIN_TEXT_CHARS and junk <= 0.1 * max(alnum, 1)


def _pdf_page_images(data: bytes, page_numbers: list[int]) -> list:
    """PIL images for the given 0-based pages: the embedded scan at native
    resolution when the page is one big image, else a render at RENDER_DPI."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise OcrFailed("The PDF could not be opened for rendering.") from exc
    images = []
    try:
        for n in page_numbers:
            page = pdf[n]
            try:
                images.append(_page_image(page, pdfium, pdfium_c))
            finally:
                page.close()
    except pdfium.PdfiumError as exc:
        raise OcrFailed("A PDF page could not be rendered.") from exc
    finally:
        pdf.close()
    return images


def _page_image(page, pdfium, pdfium_c):
    width, height = page.get_size()
    objs = list(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2))
    if len(objs) == 1:
        obj = objs[0]
        left, bottom, right, top = obj.get_bounds()
        covers = (right - left) * (top - bottom) >= 0.5 * width * height
        if covers:
            try:
                img = obj.get_bitmap(render=False).to_pil()
            except pdfium.PdfiumError:
                img = None
            if img is not None and min(img.size) >= 300:
                rotation = page.get_rotation()
                matrix = obj.get_matrix().get()  # (a, b, c, d, e, f)
                upright = matrix[1] == 0 and matrix[2] == 0 and matrix[0] > 0 and matrix[3] > 0
                if upright:
                    if rotation:
                        img = img.rotate(-rotation, expand=True)
                    return img
    # vector page, several images or an odd transform: render the page
    # (at RENDER_DPI, but never beyond MAX_IMAGE_SIDE for poster-sized pages)
    scale = min(RENDER_DPI / 72, MAX_IMAGE_SIDE / max(width, height, 1))
    return page.render(scale=scale, grayscale=True).to_pil()


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def extract_text(data: bytes, *, content_type: str, languages: str = "fra+eng") -> OcrResult:
    """Text of a PDF or image proof (see the module docstring for the rules)."""
    if not data:
        raise OcrFailed("Empty document.")
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype in PDF_TYPES:
        return _extract_pdf(data, languages)
    if ctype.startswith("image/"):
        frames, total = _open_image_pages(data)
        _require_tesseract(languages)
        text = _join(_ocr_pages([_prepare(f) for f in frames], languages))
        return OcrResult(text=text, source="tesseract", pages=len(frames), truncated=total > len(frames))
    raise OcrFailed(f"Unsupported content type for text extraction: {ctype or 'unknown'}.")


def _extract_pdf(data: bytes, languages: str) -> OcrResult:
    texts, total = _pdf_text_pages(data)
    if not texts:
        raise OcrFailed("The PDF has no pages.")
    scanned = [n for n, t in enumerate(texts) if not _real_text(t)]
    source = "pdf_text"
    if scanned:
        _require_tesseract(languages)
        images = [_prepare(img) for img in _pdf_page_images(data, scanned)]
        for n, t in zip(scanned, _ocr_pages(images, languages)):
            texts[n] = t
        source = "tesseract"
    return OcrResult(
        text=_join([_clean_page(t) for t in texts]),
        source=source,
        pages=len(texts),
        truncated=total > len(texts),
    )
