"""Was the photo taken where and when the milestone says? Exact-decimal checks.

Two parts:

* :func:`distance_m` — great-circle (haversine) distance on a sphere, in
  ``decimal`` arithmetic, no float anywhere.
* :func:`check_photo` — compares a :class:`~proofs.exif.PhotoExif` with a
  milestone's :class:`Geofence` and maximum photo age and returns a
  :class:`PhotoCheck` of hard ``errors`` and soft ``warnings``;
  :func:`raise_for_errors` turns the hard ones into ``Unprocessable`` (422).

Pure Python: no Django, no Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, getcontext, localcontext
from typing import Any

from kobatela.core.errors import Unprocessable
from proofs.exif import PhotoExif

#: Mean Earth radius (IUGG R1 = (2a + b) / 3 of WGS 84), metres.
EARTH_RADIUS_M = Decimal("6371008.8")
#: Working precision of every computation here (significant digits).
PRECISION = 50
#: distance_m() is rounded to this (1 µm), ROUND_HALF_EVEN.
DISTANCE_QUANTUM = Decimal("0.000001")

#: When ``PhotoExif.utc_offset_known`` is False the EXIF time is local time read
#: as UTC, so it is late by the camera's offset (up to +14 h) or early by up to
#: 12 h. The time checks are widened by that much instead of failing real photos.
UNKNOWN_OFFSET_FUTURE_SLACK = timedelta(hours=14)
UNKNOWN_OFFSET_PAST_SLACK = timedelta(hours=12)


# --------------------------------------------------------------------------- #
# Decimal elementary functions. All expect to run inside a context of
# PRECISION digits; each sums its series until the next term is below
# 10**-(prec+2), i.e. far below one unit in the last place of any result here
# (all results are of magnitude ≤ 4).
# --------------------------------------------------------------------------- #


def _eps() -> Decimal:
    return Decimal(1).scaleb(-(getcontext().prec + 2))


def _atan_series(x: Decimal) -> Decimal:
    """atan(x) = x − x³/3 + x⁵/5 − …, for |x| ≤ 0.2 (each term ≥ 25× smaller)."""
    eps = _eps()
    x2 = x * x
    power = x
    total = x
    n = 1
    while True:
        power = -power * x2
        n += 2
        term = power / n
        if abs(term) < eps:
            return total
        total += term


def _atan_unit(x: Decimal) -> Decimal:
    """atan(x) for 0 ≤ x ≤ 1: three half-angle reductions, then the series.

    tan(θ/2) = tan θ / (1 + √(1 + tan²θ)) maps [0, 1] into [0, tan(π/16)] ⊂ [0, 0.2].
    """
    for _ in range(3):
        x = x / (1 + (1 + x * x).sqrt())
    return _atan_series(x) * 8


def _compute_pi(prec: int) -> Decimal:
    """π by Machin's formula π = 16·atan(1/5) − 4·atan(1/239), with 10 guard digits."""
    with localcontext(Context(prec=prec + 10, rounding=ROUND_HALF_EVEN)):
        pi = 16 * _atan_series(Decimal(1) / 5) - 4 * _atan_series(Decimal(1) / 239)
    with localcontext(Context(prec=prec, rounding=ROUND_HALF_EVEN)):
        return +pi


_PI = _compute_pi(PRECISION)


def _sin(x: Decimal) -> Decimal:
    """Taylor series; callers keep |x| ≤ π/2 so it converges in ≤ ~35 terms."""
    eps = _eps()
    x2 = x * x
    term = x
    total = x
    n = 1
    while abs(term) >= eps:
        term = -term * x2 / ((n + 1) * (n + 2))
        n += 2
        total += term
    return total


def _cos(x: Decimal) -> Decimal:
    eps = _eps()
    x2 = x * x
    term = Decimal(1)
    total = Decimal(1)
    n = 0
    while abs(term) >= eps:
        term = -term * x2 / ((n + 1) * (n + 2))
        n += 2
        total += term
    return total


def _to_decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal (or int/str), not float")
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{name} must be finite")
    return result


def _coordinates(lat: Any, lng: Any, prefix: str) -> tuple[Decimal, Decimal]:
    lat_d = _to_decimal(lat, f"{prefix}lat")
    lng_d = _to_decimal(lng, f"{prefix}lng")
    if abs(lat_d) > 90:
        raise ValueError(f"{prefix}lat must be within [-90, 90], got {lat_d}")
    if abs(lng_d) > 180:
        raise ValueError(f"{prefix}lng must be within [-180, 180], got {lng_d}")
    return lat_d, lng_d


def distance_m(lat1: Decimal, lng1: Decimal, lat2: Decimal, lng2: Decimal) -> Decimal:
    """Haversine distance in metres between two points (degrees), rounded to 1 µm.

    Model: a sphere of radius ``EARTH_RADIUS_M`` = 6 371 008.8 m. The bound
    below is the *numerical* error against that spherical model; the model
    itself differs from the WGS 84 ellipsoid by up to ~0.5 % of the distance,
    which is irrelevant for geofences of a few hundred metres but is not a
    geodesic distance.

    Method (``decimal``, a local context of 50 significant digits,
    ROUND_HALF_EVEN, no float anywhere)::

        h = sin²(Δφ/2) + cos φ1 · cos φ2 · sin²(Δλ/2)
        c = 2 · atan2(√h, √(1 − h))            (= 2 · asin √h)
        d = R · c

    Δλ is first reduced into [−180°, 180°] (sin²(Δλ/2) has period 360°), so
    every sin/cos argument lies in [−π/2, π/2], where their Taylor series are
    summed until the next term is < 10⁻⁵². π comes from Machin's formula. atan
    uses three half-angle reductions to |x| ≤ tan(π/16) < 0.2, then its series;
    atan2 uses atan(a/b) when a ≤ b and π/2 − atan(b/a) otherwise, so the
    series argument never exceeds 1 before reduction (no slow asin series near
    1, no division by zero at the antipode). √ is Decimal.sqrt (correctly
    rounded).

    Error bound. Inputs are exact Decimals. Each of the ~300 elementary
    operations rounds once at 50 digits, on values of magnitude ≤ 4, and each
    series is truncated below 10⁻⁵², so every sin, cos, π/180 product and
    hence h carries an absolute error below 10⁻⁴⁵ (a deliberately generous
    bound: 300 · 4 · 10⁻⁵⁰ ≈ 10⁻⁴⁷). The map h ↦ c = 2·asin(√h) is
    ½-Hölder on [0, 1] with |c(a) − c(b)| ≤ π·√|a − b| (write a = sin²α,
    b = sin²β, t = α − β ≥ 0: a − b = sin(α+β)·sin t ≥ sin² t ≥ (2t/π)², by
    Jordan's inequality), which covers the ill-conditioned antipodal case; so
    the central angle is off by at most π·√(10⁻⁴⁵) < 10⁻²² rad, plus ~10⁻⁴⁸
    from evaluating atan2 itself, and d by R·10⁻²² < 10⁻¹⁵ m. The result is
    then rounded to 1 µm, so the returned value is within 0.5 µm + 10⁻¹⁵ m of
    the exact spherical haversine distance — comfortably below 1 cm.
    """
    lat1_d, lng1_d = _coordinates(lat1, lng1, "")
    lat2_d, lng2_d = _coordinates(lat2, lng2, "")
    with localcontext(Context(prec=PRECISION, rounding=ROUND_HALF_EVEN)):
        rad = _PI / 180
        dlng = lng2_d - lng1_d
        if dlng > 180:
            dlng -= 360
        elif dlng < -180:
            dlng += 360
        s_lat = _sin((lat2_d - lat1_d) * rad / 2)
        s_lng = _sin(dlng * rad / 2)
        h = s_lat * s_lat + _cos(lat1_d * rad) * _cos(lat2_d * rad) * s_lng * s_lng
        h = min(max(h, Decimal(0)), Decimal(1))
        a = h.sqrt()
        b = (1 - h).sqrt()
        if a <= b:
            half_angle = _atan_unit(a / b)  # b ≥ √½ here
        else:
            half_angle = _PI / 2 - _atan_unit(b / a)  # a > √½ here
        distance = 2 * half_angle * EARTH_RADIUS_M
        return distance.quantize(DISTANCE_QUANTUM, rounding=ROUND_HALF_EVEN)


# --------------------------------------------------------------------------- #
# Photo checks
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Geofence:
    """A circle a photo must be taken in: centre in degrees, radius in metres (inclusive)."""

    lat: Decimal
    lng: Decimal
    radius_m: Decimal | int

    def __post_init__(self) -> None:
        lat, lng = _coordinates(self.lat, self.lng, "geofence ")
        radius = _to_decimal(self.radius_m, "radius_m")
        if radius < 0:
            raise ValueError("radius_m must be ≥ 0")
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lng", lng)
        object.__setattr__(self, "radius_m", radius)


@dataclass(frozen=True)
class PhotoCheck:
    """Outcome of :func:`check_photo`.

    ``errors``: hard failures — the proof is refused (``raise_for_errors``).
    ``warnings``: the photo cannot be verified (``exif_time_missing``,
    ``gps_missing``) — send it to human review, never auto-approve.
    Each entry is ``{"code", "message", ...data}`` with JSON-ready values.
    """

    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    distance_m: Decimal | None = None

    @property
    def verifiable_and_clean(self) -> bool:
        """True only if nothing failed and nothing was unverifiable (eligible for auto-approval)."""
        return not self.errors and not self.warnings


def _fmt_distance(value: Decimal) -> str:
    # Rounded up, so a refused photo never shows a distance equal to the radius.
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_CEILING))


def check_photo(
    *,
    exif: PhotoExif,
    geofence: Geofence | None,
    max_age_hours: int | None,
    now: datetime,
    future_skew_seconds: int = 300,
) -> PhotoCheck:
    """Check a photo's EXIF time and position against the milestone's rules.

    Which rules apply:

    * **Position** only when ``geofence`` is set. No GPS → warning
      ``gps_missing``. Distance > radius → error ``outside_geofence`` (a
      distance equal to the radius passes), with ``distance_m`` (2 decimals,
      rounded up) and ``radius_m`` as strings.
    * **Time** when ``max_age_hours`` is set *or* a geofence is set: a geotag
      says nothing about *when*, so without a capture time an old photo of the
      site could be replayed — hence no time → warning ``exif_time_missing``
      in both cases. With a time: ``captured_at > now + future_skew_seconds``
      → error ``photo_in_future``; with ``max_age_hours``,
      ``captured_at < now − max_age_hours`` → error ``photo_too_old`` (exactly
      the limit passes). With neither rule set, nothing is checked.
    * If ``exif.utc_offset_known`` is False (naive EXIF time assumed UTC), the
      future bound is widened by 14 h and the age bound by 12 h — the range of
      real UTC offsets — so that a genuine photo is never refused because of
      the camera's timezone.

    ``now`` must be timezone-aware. Errors are ordered: position, then time.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if max_age_hours is not None and max_age_hours < 0:
        raise ValueError("max_age_hours must be ≥ 0")
    if future_skew_seconds < 0:
        raise ValueError("future_skew_seconds must be ≥ 0")

    errors: list[dict] = []
    warnings: list[dict] = []
    distance: Decimal | None = None

    if geofence is not None:
        if exif.lat is None or exif.lng is None:
            warnings.append(
                {
                    "code": "gps_missing",
                    "message": "The photo has no GPS position in its EXIF data, so its location cannot be verified.",
                }
            )
        else:
            distance = distance_m(geofence.lat, geofence.lng, exif.lat, exif.lng)
            if distance > geofence.radius_m:
                shown = _fmt_distance(distance)
                errors.append(
                    {
                        "code": "outside_geofence",
                        "message": f"The photo was taken {shown} m from the site; the limit is {geofence.radius_m} m.",
                        "distance_m": shown,
                        "radius_m": str(geofence.radius_m),
                    }
                )

    if max_age_hours is not None or geofence is not None:
        captured = exif.captured_at
        if captured is None:
            warnings.append(
                {
                    "code": "exif_time_missing",
                    "message": "The photo has no capture time in its EXIF data, so when it was taken cannot be verified.",
                }
            )
        else:
            if captured.tzinfo is None or captured.utcoffset() is None:
                raise ValueError("exif.captured_at must be timezone-aware")
            future_slack = timedelta(0) if exif.utc_offset_known else UNKNOWN_OFFSET_FUTURE_SLACK
            past_slack = timedelta(0) if exif.utc_offset_known else UNKNOWN_OFFSET_PAST_SLACK
            if captured > now + timedelta(seconds=future_skew_seconds) + future_slack:
                errors.append(
                    {
                        "code": "photo_in_future",
                        "message": "The photo's capture time is in the future.",
                        "captured_at": captured.isoformat(),
                        "now": now.isoformat(),
                        "future_skew_seconds": future_skew_seconds,
                    }
                )
            elif max_age_hours is not None and captured < now - timedelta(hours=max_age_hours) - past_slack:
                errors.append(
                    {
                        "code": "photo_too_old",
                        "message": f"The photo was taken more than {max_age_hours} hours ago.",
                        "captured_at": captured.isoformat(),
                        "max_age_hours": max_age_hours,
                        "age_seconds": int((now - captured).total_seconds()),
                    }
                )

    return PhotoCheck(errors=errors, warnings=warnings, distance_m=distance)


def raise_for_errors(check: PhotoCheck) -> None:
    """Raise ``Unprocessable`` (422) with the first error's code if the check has errors."""
    if check.errors:
        first = check.errors[0]
        raise Unprocessable(first["code"], first["message"], details={"errors": check.errors})
