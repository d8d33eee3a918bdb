"""proofs.geofence: exact-decimal haversine distance and the photo time/place checks."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest

from kobatela.core.errors import Unprocessable
from proofs import geofence as gf
from proofs.exif import PhotoExif
from proofs.geofence import EARTH_RADIUS_M, Geofence, PhotoCheck, check_photo, distance_m, raise_for_errors

# π to 100 decimals (reference value, independent of the module's Machin computation).
PI_100 = Decimal(
    "3.1415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679"
)
R = Decimal("6371008.8")
UM = Decimal("0.000001")
Q6 = Decimal("0.000001")
D = Decimal


def exact(value: Decimal) -> Decimal:
    return value.quantize(UM, rounding=ROUND_HALF_EVEN)


def meridian_arc(dlat_deg: Decimal) -> Decimal:
    """Exact spherical distance between two points on one meridian: R·|Δφ| (no trig at all)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return R * abs(dlat_deg) * PI_100 / 180


def north_of(lat: Decimal, metres: Decimal) -> Decimal:
    """The 6-decimal latitude nearest to `metres` north of `lat` (Δφ = d / R radians)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return (lat + metres / R * 180 / PI_100).quantize(Q6, rounding=ROUND_HALF_EVEN)


def float_vincenty(lat1: Decimal, lng1: Decimal, lat2: Decimal, lng2: Decimal) -> float:
    """Great-circle distance in float via the atan2 (Vincenty, sphere) form: well-conditioned everywhere."""
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dl = math.radians(float(lng2) - float(lng1))
    y = math.hypot(math.cos(p2) * math.sin(dl), math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl))
    x = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return float(R) * math.atan2(y, x)


def float_haversine(lat1, lng1, lat2, lng2) -> float:
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp, dl = p2 - p1, math.radians(float(lng2) - float(lng1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * float(R) * math.asin(math.sqrt(h))


# --------------------------------------------------------------------------- the arithmetic itself


def test_pi_from_machin_matches_reference_digits():
    with localcontext() as ctx:
        ctx.prec = 60
        assert gf._PI == PI_100.quantize(D(10) ** -49)  # 50 significant digits
    assert EARTH_RADIUS_M == R


def test_sin_cos_against_math_and_pythagoras():
    with localcontext() as ctx:
        ctx.prec = gf.PRECISION
        for text in ("0", "0.1", "-0.5", "1", "1.5707963267948966", "-1.2345678901234567"):
            x = D(text)
            s, c = gf._sin(x), gf._cos(x)
            assert abs(float(s) - math.sin(float(x))) < 1e-15
            assert abs(float(c) - math.cos(float(x))) < 1e-15
            assert abs(s * s + c * c - 1) < D("1e-45")
        assert abs(gf._atan_unit(D(1)) * 4 - gf._PI) < D("1e-45")


# --------------------------------------------------------------------------- distance_m


def test_returns_decimal_micrometres():
    d = distance_m(D("-4.325"), D("15.3222"), D("-4.3"), D("15.31"))
    assert isinstance(d, Decimal)
    assert d.as_tuple().exponent == -6


@pytest.mark.parametrize(
    ("p1", "p2", "exact_metres"),
    [
        # along a meridian: R·Δφ, exact in the spherical model
        (("0", "0"), ("1", "0"), R * PI_100 / 180),
        (("-4.325", "15.3222"), ("-4.324", "15.3222"), R * PI_100 / 180 / 1000),
        (("10", "-70"), ("10.000001", "-70"), R * PI_100 / 180 / 10**6),
        # along the equator: same
        (("0", "0"), ("0", "1"), R * PI_100 / 180),
        (("0", "0"), ("0", "90"), R * PI_100 / 2),
        # antipodes and poles: πR
        (("0", "0"), ("0", "180"), R * PI_100),
        (("10", "20"), ("-10", "-160"), R * PI_100),
        (("-33.8688", "151.2093"), ("33.8688", "-28.7907"), R * PI_100),
        (("90", "0"), ("-90", "0"), R * PI_100),
        (("90", "0"), ("0", "123.456"), R * PI_100 / 2),
    ],
)
def test_exact_reference_distances(p1, p2, exact_metres):
    with localcontext() as ctx:
        ctx.prec = 80
        expected = exact(exact_metres)
    got = distance_m(D(p1[0]), D(p1[1]), D(p2[0]), D(p2[1]))
    assert abs(got - expected) <= UM, (got, expected)


def test_meridian_arcs_are_exact_to_the_micrometre():
    rng = random.Random(11)
    for _ in range(200):
        lat1 = D(rng.randint(-89_000_000, 89_000_000)).scaleb(-6)
        lat2 = D(rng.randint(-89_000_000, 89_000_000)).scaleb(-6)
        lng = D(rng.randint(-180_000_000, 180_000_000)).scaleb(-6)
        assert abs(distance_m(lat1, lng, lat2, lng) - exact(meridian_arc(lat2 - lat1))) <= UM


def test_known_city_pairs_against_float_haversine():
    pairs = [
        ((D("-4.325"), D("15.322222")), (D("-4.263360"), D("15.242885"))),  # Kinshasa – Brazzaville
        ((D("48.856614"), D("2.352222")), (D("51.507351"), D("-0.127758"))),  # Paris – London
        ((D("-1.292066"), D("36.821946")), (D("-1.286389"), D("36.817223"))),  # Nairobi, ~800 m
    ]
    for (a, b), (c, d) in pairs:
        assert abs(float(distance_m(a, b, c, d)) - float_haversine(a, b, c, d)) < 0.001


def test_random_pairs_against_float_great_circle_within_a_millimetre():
    rng = random.Random(2024)
    for i in range(300):
        lat1 = D(rng.randint(-90_000_000, 90_000_000)).scaleb(-6)
        lng1 = D(rng.randint(-180_000_000, 180_000_000)).scaleb(-6)
        if i % 3 == 0:  # near-antipodal: where asin-based float code loses digits
            lat2 = (-lat1 + D(rng.randint(-1000, 1000)).scaleb(-6)).max(D(-90)).min(D(90))
            lng2 = lng1 - 180 if lng1 > 0 else lng1 + 180
            lng2 += D(rng.randint(-1000, 1000)).scaleb(-6)
            lng2 = lng2.max(D(-180)).min(D(180))
        else:
            lat2 = D(rng.randint(-90_000_000, 90_000_000)).scaleb(-6)
            lng2 = D(rng.randint(-180_000_000, 180_000_000)).scaleb(-6)
        got = distance_m(lat1, lng1, lat2, lng2)
        assert abs(float(got) - float_vincenty(lat1, lng1, lat2, lng2)) < 0.001, (lat1, lng1, lat2, lng2)


def test_symmetry_and_zero():
    rng = random.Random(5)
    for _ in range(100):
        a = (D(rng.randint(-90_000_000, 90_000_000)).scaleb(-6), D(rng.randint(-180_000_000, 180_000_000)).scaleb(-6))
        b = (D(rng.randint(-90_000_000, 90_000_000)).scaleb(-6), D(rng.randint(-180_000_000, 180_000_000)).scaleb(-6))
        assert distance_m(*a, *b) == distance_m(*b, *a)
        assert distance_m(*a, *a) == 0
    assert distance_m(D(90), D(0), D(90), D(100)) == 0  # the pole is one point
    assert distance_m(D(0), D(180), D(0), D(-180)) == 0  # so is the antimeridian


def test_across_the_antimeridian():
    d = distance_m(D(0), D("179.9999"), D(0), D("-179.9999"))
    assert abs(d - exact(R * D("0.0002") * PI_100 / 180)) <= UM  # ≈ 22.24 m, not ≈ 40 000 km


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((1.5, D(0), D(0), D(0)), TypeError),
        ((D(0), D(0), D(0), None), TypeError),
        ((D("NaN"), D(0), D(0), D(0)), ValueError),
        ((D("Infinity"), D(0), D(0), D(0)), ValueError),
        ((D("90.000001"), D(0), D(0), D(0)), ValueError),
        ((D(0), D("-180.5"), D(0), D(0)), ValueError),
    ],
)
def test_bad_inputs(args, error):
    with pytest.raises(error):
        distance_m(*args)


def test_int_and_str_inputs_are_accepted():
    assert distance_m(0, 0, "1", "0") == distance_m(D(0), D(0), D(1), D(0))


# --------------------------------------------------------------------------- check_photo

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
SITE = (D("-4.325000"), D("15.322200"))  # Kinshasa


def at(lat, lng=SITE[1], *, captured_at=NOW - timedelta(hours=1), offset_known=True) -> PhotoExif:
    return PhotoExif(captured_at=captured_at, lat=lat, lng=lng, utc_offset_known=offset_known)


def codes(entries) -> list[str]:
    return [e["code"] for e in entries]


def test_clean_photo():
    check = check_photo(exif=at(SITE[0]), geofence=Geofence(*SITE, 100), max_age_hours=24, now=NOW)
    assert check == PhotoCheck(errors=[], warnings=[], distance_m=D("0.000000"))
    assert check.verifiable_and_clean
    raise_for_errors(check)  # no-op


def test_geofence_boundary_plus_minus_half_a_metre_integer_radius():
    """Radius 500 m; points ~499.5 m and ~500.5 m north (6-decimal latitudes are ~0.11 m apart)."""
    fence = Geofence(*SITE, 500)
    inside_lat = north_of(SITE[0], D("499.5"))
    outside_lat = north_of(SITE[0], D("500.5"))
    inside_exact, outside_exact = meridian_arc(inside_lat - SITE[0]), meridian_arc(outside_lat - SITE[0])
    assert D("499.44") < inside_exact < D("499.56")  # quantization moved it < 6 cm
    assert D("500.44") < outside_exact < D("500.56")

    inside = check_photo(exif=at(inside_lat), geofence=fence, max_age_hours=None, now=NOW)
    assert inside.errors == [] and inside.verifiable_and_clean
    assert abs(inside.distance_m - exact(inside_exact)) <= UM

    outside = check_photo(exif=at(outside_lat), geofence=fence, max_age_hours=None, now=NOW)
    assert codes(outside.errors) == ["outside_geofence"]
    error = outside.errors[0]
    assert error["radius_m"] == "500"
    assert D(error["distance_m"]) == exact(outside_exact).quantize(D("0.01"), rounding="ROUND_CEILING")


def test_geofence_boundary_relative_to_the_exact_distance_of_the_quantized_point():
    lat = north_of(SITE[0], D("1234.567"))
    exact_d = meridian_arc(lat - SITE[0])  # exact distance of the point actually tested
    passes = check_photo(exif=at(lat), geofence=Geofence(*SITE, exact_d + D("0.5")), max_age_hours=None, now=NOW)
    fails = check_photo(exif=at(lat), geofence=Geofence(*SITE, exact_d - D("0.5")), max_age_hours=None, now=NOW)
    assert passes.errors == []
    assert codes(fails.errors) == ["outside_geofence"]


def test_distance_equal_to_radius_passes():
    lat = north_of(SITE[0], D(300))
    d = distance_m(*SITE, lat, SITE[1])
    assert check_photo(exif=at(lat), geofence=Geofence(*SITE, d), max_age_hours=None, now=NOW).errors == []
    assert check_photo(exif=at(lat), geofence=Geofence(*SITE, d - UM), max_age_hours=None, now=NOW).errors


def test_missing_gps_with_geofence_is_a_warning_not_an_error():
    check = check_photo(exif=at(None, None), geofence=Geofence(*SITE, 100), max_age_hours=24, now=NOW)
    assert check.errors == []
    assert codes(check.warnings) == ["gps_missing"]
    assert check.distance_m is None
    assert not check.verifiable_and_clean  # → human review, never auto-approved
    raise_for_errors(check)  # warnings never raise


def test_half_missing_gps_counts_as_missing():
    check = check_photo(exif=at(SITE[0], None), geofence=Geofence(*SITE, 100), max_age_hours=None, now=NOW)
    assert codes(check.warnings) == ["gps_missing"]


def test_missing_gps_without_geofence_does_not_matter():
    check = check_photo(exif=at(None, None), geofence=None, max_age_hours=24, now=NOW)
    assert check.verifiable_and_clean and check.distance_m is None


def test_photo_too_old():
    old = at(SITE[0], captured_at=NOW - timedelta(hours=24, seconds=1))
    check = check_photo(exif=old, geofence=None, max_age_hours=24, now=NOW)
    assert codes(check.errors) == ["photo_too_old"]
    assert check.errors[0]["max_age_hours"] == 24
    assert check.errors[0]["age_seconds"] == 24 * 3600 + 1
    exactly = at(SITE[0], captured_at=NOW - timedelta(hours=24))
    assert check_photo(exif=exactly, geofence=None, max_age_hours=24, now=NOW).errors == []


def test_photo_in_future():
    skew = 300
    just_inside = at(SITE[0], captured_at=NOW + timedelta(seconds=skew))
    assert check_photo(exif=just_inside, geofence=None, max_age_hours=24, now=NOW).errors == []
    beyond = at(SITE[0], captured_at=NOW + timedelta(seconds=skew + 1))
    check = check_photo(exif=beyond, geofence=None, max_age_hours=24, now=NOW)
    assert codes(check.errors) == ["photo_in_future"]
    assert check.errors[0]["future_skew_seconds"] == skew
    assert codes(check_photo(exif=just_inside, geofence=None, max_age_hours=24, now=NOW, future_skew_seconds=0).errors) == [
        "photo_in_future"
    ]


def test_unknown_utc_offset_widens_the_time_window():
    # A photo taken just now in Kinshasa (UTC+1) without OffsetTimeOriginal reads as 1 h in the future.
    local_read_as_utc = NOW + timedelta(hours=1)
    lenient = check_photo(exif=at(SITE[0], captured_at=local_read_as_utc, offset_known=False),
                          geofence=None, max_age_hours=24, now=NOW)
    assert lenient.errors == []
    strict = check_photo(exif=at(SITE[0], captured_at=local_read_as_utc, offset_known=True),
                         geofence=None, max_age_hours=24, now=NOW)
    assert codes(strict.errors) == ["photo_in_future"]
    # still bounded: beyond +14 h (+ skew) it is refused even with the offset unknown
    far = at(SITE[0], captured_at=NOW + timedelta(hours=14, seconds=301), offset_known=False)
    assert codes(check_photo(exif=far, geofence=None, max_age_hours=24, now=NOW).errors) == ["photo_in_future"]
    # and the age limit gets the 12 h west-of-UTC slack
    old = at(SITE[0], captured_at=NOW - timedelta(hours=24 + 11), offset_known=False)
    assert check_photo(exif=old, geofence=None, max_age_hours=24, now=NOW).errors == []
    older = at(SITE[0], captured_at=NOW - timedelta(hours=24 + 12, seconds=1), offset_known=False)
    assert codes(check_photo(exif=older, geofence=None, max_age_hours=24, now=NOW).errors) == ["photo_too_old"]


def test_missing_time_matters_with_max_age_or_geofence_only():
    no_time = at(SITE[0], captured_at=None)
    assert codes(check_photo(exif=no_time, geofence=None, max_age_hours=24, now=NOW).warnings) == ["exif_time_missing"]
    assert codes(check_photo(exif=no_time, geofence=Geofence(*SITE, 50), max_age_hours=None, now=NOW).warnings) == [
        "exif_time_missing"
    ]
    assert check_photo(exif=no_time, geofence=None, max_age_hours=None, now=NOW).verifiable_and_clean


def test_no_rules_means_nothing_to_check():
    nothing = PhotoExif(captured_at=None, lat=None, lng=None)
    assert check_photo(exif=nothing, geofence=None, max_age_hours=None, now=NOW).verifiable_and_clean
    future = at(SITE[0], captured_at=NOW + timedelta(days=400))
    assert check_photo(exif=future, geofence=None, max_age_hours=None, now=NOW).errors == []


def test_several_errors_and_raise_for_errors():
    far_and_old = at(north_of(SITE[0], D(2000)), captured_at=NOW - timedelta(days=3))
    check = check_photo(exif=far_and_old, geofence=Geofence(*SITE, 100), max_age_hours=48, now=NOW)
    assert codes(check.errors) == ["outside_geofence", "photo_too_old"]
    json.dumps(check.errors)  # JSON-ready as is
    with pytest.raises(Unprocessable) as exc:
        raise_for_errors(check)
    assert exc.value.status == 422
    assert exc.value.code == "outside_geofence"
    assert exc.value.message == check.errors[0]["message"]
    assert exc.value.details == {"errors": check.errors}


def test_now_and_captured_at_must_be_aware():
    with pytest.raises(ValueError):
        check_photo(exif=at(SITE[0]), geofence=None, max_age_hours=24, now=NOW.replace(tzinfo=None))
    naive = at(SITE[0], captured_at=datetime(2025, 6, 1, 11, 0))
    with pytest.raises(ValueError):
        check_photo(exif=naive, geofence=None, max_age_hours=24, now=NOW)


def test_now_in_another_timezone_is_the_same_instant():
    plus2 = NOW.astimezone(timezone(timedelta(hours=2)))
    photo = at(SITE[0], captured_at=NOW + timedelta(seconds=200))
    assert check_photo(exif=photo, geofence=None, max_age_hours=1, now=plus2).errors == []


def test_geofence_validation():
    fence = Geofence(0, "1.5", 100)
    assert fence == Geofence(D(0), D("1.5"), D(100))
    assert isinstance(fence.radius_m, Decimal)
    for bad in ((D(91), D(0), 10), (D(0), D(181), 10), (D(0), D(0), -1)):
        with pytest.raises(ValueError):
            Geofence(*bad)
    with pytest.raises(TypeError):
        Geofence(D(0), D(0), 10.5)
