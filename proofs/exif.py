"""When and where a proof photo says it was taken, from the file's own EXIF.

Only the EXIF embedded in the image is read (``image.getexif()``): never the
client's form fields, never XMP, never the upload time. Everything is parsed
defensively — EXIF is attacker-controlled input — so a garbage value makes its
field ``None`` and never raises.

* ``captured_at``: ``DateTimeOriginal`` (0x9003) from the Exif IFD (0x8769),
  plus ``SubSecTimeOriginal`` (0x9291) if it parses. ``DateTime`` (0x0132, the
  *modification* time editors rewrite) and ``DateTimeDigitized`` are
  deliberately not used as fallbacks. The result is always timezone-aware UTC:

  - with ``OffsetTimeOriginal`` (0x9011, ``±HH:MM``) the local time is converted
    to UTC exactly, and ``utc_offset_known`` is True;
  - without it (or with an unparseable one) the naive EXIF time is **assumed to
    be UTC** and ``utc_offset_known`` is False. That assumption is wrong by the
    camera's UTC offset (−12 h … +14 h) — a photo taken a minute ago in
    Kinshasa (UTC+1) reads as one hour in the future. ``geofence.check_photo``
    widens its time checks by that much when the offset is unknown.

* ``lat``/``lng``: ``GPSLatitude``/``GPSLongitude`` (2/4) with their refs
  (1/3: N/S, E/W) from the GPS IFD (0x8825). Each rational is converted as
  ``Decimal(numerator) / Decimal(denominator)`` (no float anywhere), degrees +
  minutes/60 + seconds/3600 in a 50-digit context, then quantized to 6 decimals
  (≈ 0.11 m) with ROUND_HALF_EVEN. A missing or unknown ref, a zero
  denominator, a negative part, minutes/seconds ≥ 60, |lat| > 90 or |lng| > 180
  → that coordinate is None. ``GPSStatus`` (9) = ``V`` ("measurement void")
  → both None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

EXIF_IFD = 0x8769
GPS_IFD = 0x8825

TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011
TAG_SUBSEC_TIME_ORIGINAL = 0x9291

GPS_LATITUDE_REF = 1
GPS_LATITUDE = 2
GPS_LONGITUDE_REF = 3
GPS_LONGITUDE = 4
GPS_STATUS = 9

COORD_QUANTUM = Decimal("0.000001")

_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_SUBSEC = re.compile(r"\d{1,9}")


@dataclass(frozen=True)
class PhotoExif:
    """What the photo's EXIF says. All fields None = nothing usable."""

    captured_at: datetime | None = None  # timezone-aware, UTC
    lat: Decimal | None = None  # degrees, 6 decimals, north positive
    lng: Decimal | None = None  # degrees, 6 decimals, east positive
    #: False when ``captured_at`` is a naive EXIF time assumed to be UTC (no
    #: usable OffsetTimeOriginal). Defaults to True so that a PhotoExif built by
    #: hand with an aware datetime is checked strictly.
    utc_offset_known: bool = True


def read_photo_exif(image: Any) -> PhotoExif:
    """Read capture time and GPS position from a Pillow image's own EXIF. Never raises."""
    try:
        exif = image.getexif()
    except Exception:
        return PhotoExif(captured_at=None, lat=None, lng=None, utc_offset_known=False)
    exif_ifd = _ifd(exif, EXIF_IFD)
    gps_ifd = _ifd(exif, GPS_IFD)

    captured_at, offset_known = _captured_at(exif_ifd)
    lat = lng = None
    if _text(gps_ifd.get(GPS_STATUS)) != "V":
        lat = _coordinate(gps_ifd.get(GPS_LATITUDE), gps_ifd.get(GPS_LATITUDE_REF), "N", "S", 90)
        lng = _coordinate(gps_ifd.get(GPS_LONGITUDE), gps_ifd.get(GPS_LONGITUDE_REF), "E", "W", 180)
    return PhotoExif(captured_at=captured_at, lat=lat, lng=lng, utc_offset_known=offset_known)


def _ifd(exif: Any, tag: int) -> dict:
    try:
        ifd = exif.get_ifd(tag)
    except Exception:
        return {}
    return ifd if isinstance(ifd, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    return value.strip("\x00 \t\r\n")


def _captured_at(exif_ifd: dict) -> tuple[datetime | None, bool]:
    raw = _text(exif_ifd.get(TAG_DATETIME_ORIGINAL))
    match = _DATETIME.fullmatch(raw) if raw else None
    if not match:
        return None, False
    try:
        local = datetime(*(int(g) for g in match.groups()))
    except ValueError:  # month 13, 31 February, year 0, ...
        return None, False

    subsec = _text(exif_ifd.get(TAG_SUBSEC_TIME_ORIGINAL))
    if subsec and _SUBSEC.fullmatch(subsec):
        local = local.replace(microsecond=int(subsec[:6].ljust(6, "0")))

    offset = _offset(_text(exif_ifd.get(TAG_OFFSET_TIME_ORIGINAL)))
    try:
        if offset is None:
            return local.replace(tzinfo=timezone.utc), False  # assumption: naive EXIF time is UTC
        return local.replace(tzinfo=timezone(offset)).astimezone(timezone.utc), True
    except (OverflowError, ValueError):  # year 1 minus an offset, year 9999 plus one
        return None, False


def _offset(raw: str | None) -> timedelta | None:
    match = _OFFSET.fullmatch(raw) if raw else None
    if not match:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
    if minutes >= 60 or hours * 60 + minutes > 14 * 60:  # real offsets: −12:00 … +14:00
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return -delta if sign == "-" else delta


def _rational(value: Any) -> Decimal | None:
    """An EXIF RATIONAL (Pillow's IFDRational, a Fraction, an int) as an exact Decimal quotient."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    numerator = getattr(value, "numerator", None)
    denominator = getattr(value, "denominator", None)
    if isinstance(value, tuple) and len(value) == 2:
        numerator, denominator = value
    if (
        not isinstance(numerator, int)
        or not isinstance(denominator, int)
        or isinstance(numerator, bool)
        or isinstance(denominator, bool)
        or denominator == 0
    ):
        return None  # floats, NaN, strings, x/0
    return Decimal(numerator) / Decimal(denominator)


def _coordinate(value: Any, ref: Any, positive: str, negative: str, limit: int) -> Decimal | None:
    try:
        with localcontext() as ctx:
            ctx.prec = 50
            if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
                return None
            parts = [_rational(v) for v in value]
            if any(p is None or p < 0 for p in parts):
                return None
            if any(p >= 60 for p in parts[1:]):
                return None
            degrees = sum(p / divisor for p, divisor in zip(parts, (1, 60, 3600)))
            hemisphere = (_text(ref) or "").upper()
            if hemisphere not in (positive, negative):
                return None
            if degrees > limit:
                return None
            if hemisphere == negative:
                degrees = -degrees
            result = degrees.quantize(COORD_QUANTUM, rounding=ROUND_HALF_EVEN)
            return result.copy_abs() if result.is_zero() else result
    except Exception:  # decimal.InvalidOperation on absurd exponents, etc.
        return None
