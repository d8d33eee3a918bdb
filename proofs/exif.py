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
  (≈ 0.11 m) with ROUND_HALF_EVEN. Minutes or seconds written as exactly 60
  (a camera rounding 59.9996 up) carry into the next unit. A missing or
  unknown ref, a zero denominator, a negative part, minutes/seconds > 60,
  |lat| > 90 or |lng| > 180 → that coordinate is None **and** a problem naming
  the tag and the reason is kept in ``gps_problems`` (the API reports it as
  ``gps_unreadable``, never as ``gps_missing``). ``GPSStatus`` (9) = ``V``
  ("measurement void") → both None, with a problem on ``GPSStatus``.

* ``gps_time``: ``GPSDateStamp`` (29) + ``GPSTimeStamp`` (7), which are UTC by
  definition. When ``OffsetTimeOriginal`` is missing and the GPS time is
  within a real UTC offset of ``DateTimeOriginal``, the GPS time gives the
  instant (``time_source == "gps"``, ``utc_offset_known`` True). When the two
  disagree by more than any offset could explain, ``time_problems`` says so.

* ``make``/``model``/``software`` (0x010F/0x0110/0x0131 in IFD0): who made the
  file. ``has_exif`` is False when the image carries no EXIF at all.
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
GPS_TIMESTAMP = 7
GPS_STATUS = 9
GPS_DATESTAMP = 29

TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_SOFTWARE = 0x0131

#: GPS time vs DateTimeOriginal read as UTC: a real UTC offset (−12 h … +14 h)
#: plus a couple of minutes of GPS fix lag.
GPS_TIME_LAG = timedelta(minutes=2)

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
    #: Where the instant came from: "offset" (OffsetTimeOriginal), "gps" (the
    #: GPS time, UTC), "assumed_utc" (neither), None (no capture time).
    time_source: str | None = None
    gps_time: datetime | None = None
    #: ({"field": "GPSLongitude", "reason": "..."}, ...): GPS tags present but unreadable.
    gps_problems: tuple = ()
    #: ({"field": ..., "reason": ...}, ...): capture-time tags present but inconsistent.
    time_problems: tuple = ()
    make: str | None = None
    model: str | None = None
    software: str | None = None
    has_exif: bool = True


def read_photo_exif(image: Any) -> PhotoExif:
    """Read capture time and GPS position from a Pillow image's own EXIF. Never raises."""
    try:
        exif = image.getexif()
    except Exception:
        return PhotoExif(captured_at=None, lat=None, lng=None, utc_offset_known=False, has_exif=False)
    exif_ifd = _ifd(exif, EXIF_IFD)
    gps_ifd = _ifd(exif, GPS_IFD)
    try:
        base = dict(exif)
    except Exception:
        base = {}
    has_exif = bool(base or exif_ifd or gps_ifd)

    captured_at, offset_known = _captured_at(exif_ifd)
    time_source = None if captured_at is None else ("offset" if offset_known else "assumed_utc")
    problems: list[dict] = []
    lat = lng = None
    if _text(gps_ifd.get(GPS_STATUS)) == "V":
        problems.append({"field": "GPSStatus", "reason": "the receiver marked the measurement void (V)"})
    else:
        lat = _coordinate(gps_ifd.get(GPS_LATITUDE), gps_ifd.get(GPS_LATITUDE_REF), "N", "S", 90,
                          problems=problems, names=("GPSLatitude", "GPSLatitudeRef"))
        lng = _coordinate(gps_ifd.get(GPS_LONGITUDE), gps_ifd.get(GPS_LONGITUDE_REF), "E", "W", 180,
                          problems=problems, names=("GPSLongitude", "GPSLongitudeRef"))
    gps_time = _gps_time(gps_ifd)
    time_problems: list[dict] = []
    if captured_at is not None and gps_time is not None:
        if offset_known:
            # Both are instants: they must agree within the fix lag (and a slow first fix).
            if abs(captured_at - gps_time) > timedelta(hours=1):
                time_problems.append({"field": "GPSTimeStamp", "reason": (
                    f"the GPS time ({gps_time.isoformat()}) is more than 1 hour from DateTimeOriginal with its "
                    f"OffsetTimeOriginal ({captured_at.isoformat()})")})
        else:
            # captured_at is local time read as UTC: local − utc is the camera's offset.
            offset = captured_at - gps_time
            if -timedelta(hours=12) - GPS_TIME_LAG <= offset <= timedelta(hours=14) + GPS_TIME_LAG:
                captured_at, offset_known, time_source = gps_time, True, "gps"
            else:
                time_problems.append({"field": "GPSTimeStamp", "reason": (
                    f"DateTimeOriginal (no OffsetTimeOriginal) and the GPS time ({gps_time.isoformat()}) differ "
                    "by more than any UTC offset")})
    return PhotoExif(captured_at=captured_at, lat=lat, lng=lng, utc_offset_known=offset_known, time_source=time_source,
                     gps_time=gps_time, gps_problems=tuple(problems), time_problems=tuple(time_problems),
                     make=_label(base.get(TAG_MAKE)), model=_label(base.get(TAG_MODEL)),
                     software=_label(base.get(TAG_SOFTWARE)), has_exif=has_exif)


def _label(value: Any) -> str | None:
    text = _text(value)
    return text[:100] if text else None


def _gps_time(gps_ifd: dict) -> datetime | None:
    """GPSDateStamp ("YYYY:MM:DD") + GPSTimeStamp (three rationals), UTC; None if either is unusable."""
    date = _text(gps_ifd.get(GPS_DATESTAMP))
    stamp = gps_ifd.get(GPS_TIMESTAMP)
    match = re.fullmatch(r"(\d{4})[:-](\d{2})[:-](\d{2})", date) if date else None
    if not match or not isinstance(stamp, (tuple, list)) or len(stamp) != 3:
        return None
    try:
        parts = [_rational(v) for v in stamp]
        if any(p is None or p < 0 for p in parts) or parts[0] >= 24 or parts[1] >= 60 or parts[2] >= 61:
            return None
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
        day = datetime(*(int(g) for g in match.groups()), tzinfo=timezone.utc)
        return day + timedelta(microseconds=int((seconds * 1_000_000).to_integral_value()))
    except (ValueError, OverflowError, ArithmeticError):
        return None


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


def _coordinate(value: Any, ref: Any, positive: str, negative: str, limit: int, *,
                problems: list | None = None, names: tuple[str, str] = ("", "")) -> Decimal | None:
    """Degrees from (d, m, s) rationals and a hemisphere ref, or None. When the
    tags are present but unusable, ``problems`` gets ``{"field", "reason"}``."""
    tag, ref_tag = names

    def unreadable(field: str, reason: str) -> None:
        if problems is not None:
            problems.append({"field": field, "reason": reason})
        return None

    if value is None and ref is None:
        return None  # simply absent: gps_missing, not a problem
    try:
        with localcontext() as ctx:
            ctx.prec = 50
            if value is None:
                return unreadable(tag, "missing (only its ref is written)")
            if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
                return unreadable(tag, "not 1 to 3 rationals")
            parts = [_rational(v) for v in value]
            if any(p is None for p in parts):
                return unreadable(tag, "a part is not a rational (or has a zero denominator)")
            if any(p < 0 for p in parts):
                return unreadable(tag, "a negative part (the sign belongs in the ref)")
            if any(p > 60 for p in parts[1:]):
                return unreadable(tag, "minutes or seconds above 60")
            # Exactly 60 is a camera rounding 59.9996 up: it carries, which the sum does.
            degrees = sum(p / divisor for p, divisor in zip(parts, (1, 60, 3600)))
            hemisphere = (_text(ref) or "").upper()
            if hemisphere not in (positive, negative):
                return unreadable(ref_tag, f"must be {positive} or {negative}")
            if degrees > limit:
                return unreadable(tag, f"more than {limit} degrees")
            if hemisphere == negative:
                degrees = -degrees
            result = degrees.quantize(COORD_QUANTUM, rounding=ROUND_HALF_EVEN)
            return result.copy_abs() if result.is_zero() else result
    except Exception:  # decimal.InvalidOperation on absurd exponents, etc.
        return unreadable(tag, "not a number")
