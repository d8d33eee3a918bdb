"""proofs.exif.read_photo_exif: capture time and GPS from the file's own EXIF, exactly."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from proofs.exif import EXIF_IFD, GPS_IFD, PhotoExif, read_photo_exif
from proofs.images import open_image

Q6 = Decimal("0.000001")


def R(num: int, den: int = 1) -> IFDRational:
    return IFDRational(num, den)


def photo(fmt: str = "JPEG", *, exif_ifd: dict | None = None, gps: dict | None = None, ifd0: dict | None = None,
          raw_exif: bytes | None = None) -> Image.Image:
    """A small image saved with the given EXIF through Pillow's Exif API, re-opened like an upload."""
    exif = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    if exif_ifd is not None:
        exif[EXIF_IFD] = exif_ifd
    if gps is not None:
        exif[GPS_IFD] = gps
    buf = io.BytesIO()
    params = {"exif": raw_exif if raw_exif is not None else exif} if (raw_exif is not None or len(exif) or exif_ifd or gps) else {}
    Image.new("RGB", (16, 16), (90, 90, 90)).save(buf, fmt, **params)
    return open_image(io.BytesIO(buf.getvalue()), max_pixels=1_000_000)


def dms(d: Fraction, m: Fraction, s: Fraction) -> Decimal:
    """Independent expectation: exact rational arithmetic, then one rounding to 6 decimals."""
    exact = Fraction(d) + Fraction(m) / 60 + Fraction(s) / 3600
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Q6, rounding=ROUND_HALF_EVEN)


# --------------------------------------------------------------------------- GPS


@pytest.mark.parametrize(
    ("lat_ref", "lng_ref", "lat_sign", "lng_sign"),
    [("N", "E", 1, 1), ("S", "E", -1, 1), ("N", "W", 1, -1), ("S", "W", -1, -1)],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_gps_with_hemisphere_refs(fmt, lat_ref, lng_ref, lat_sign, lng_sign):
    # Kinshasa-ish: 4°19'30.12" / 15°18'47.91"
    gps = {
        1: lat_ref,
        2: (R(4), R(19), R(3012, 100)),
        3: lng_ref,
        4: (R(15), R(18), R(4791, 100)),
    }
    result = read_photo_exif(photo(fmt, gps=gps))
    assert result.lat == lat_sign * Decimal("4.325033")  # 4 + 19/60 + 30.12/3600 = 4.32503333…
    assert result.lng == lng_sign * Decimal("15.313308")  # 15 + 18/60 + 47.91/3600 = 15.31330833…
    assert result.lat == lat_sign * dms(Fraction(4), Fraction(19), Fraction(3012, 100))
    assert isinstance(result.lat, Decimal) and result.lat.as_tuple().exponent == -6


def test_gps_is_exact_decimal_and_rounds_half_even():
    # 0.1234565 and 0.1234575 are exact ties at the 7th decimal: HALF_EVEN → …56 and …58.
    gps = {1: "N", 2: (R(1234565, 10_000_000), R(0), R(0)), 3: "E", 4: (R(1234575, 10_000_000), R(0), R(0))}
    result = read_photo_exif(photo(gps=gps))
    assert result.lat == Decimal("0.123456")
    assert result.lng == Decimal("0.123458")


def test_gps_decimal_degrees_and_odd_denominators():
    gps = {1: "S", 2: (R(-0 + 4325033, 1_000_000), R(0, 1), R(0, 1)), 3: "W", 4: (R(179), R(59), R(59999, 1000))}
    result = read_photo_exif(photo(gps=gps))
    assert result.lat == Decimal("-4.325033")
    assert result.lng == dms(Fraction(179), Fraction(59), Fraction(59999, 1000)) * -1  # -179.999999…


def test_gps_refs_as_lowercase_or_padded_are_accepted():
    gps = {1: "s\x00", 2: (R(1), R(30), R(0)), 3: " w", 4: (R(2), R(0), R(36))}
    result = read_photo_exif(photo(gps=gps))
    assert (result.lat, result.lng) == (Decimal("-1.500000"), Decimal("-2.010000"))


def test_zero_is_not_negative_zero():
    gps = {1: "S", 2: (R(0), R(0), R(0)), 3: "W", 4: (R(0), R(0), R(0))}
    result = read_photo_exif(photo(gps=gps))
    assert str(result.lat) == "0.000000" and str(result.lng) == "0.000000"


# --------------------------------------------------------------------------- time


def test_offset_time_original_converts_to_utc():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:00", 0x9011: "+02:00"}))
    assert result.captured_at == datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
    assert result.captured_at.utcoffset().total_seconds() == 0
    assert result.utc_offset_known is True


def test_negative_half_hour_offset():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:12:31 22:15:00", 0x9011: "-05:30"}))
    assert result.captured_at == datetime(2025, 1, 1, 3, 45, tzinfo=timezone.utc)


def test_naive_time_is_assumed_utc_and_flagged():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:00"}))
    assert result.captured_at == datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    assert result.captured_at.tzinfo is not None
    assert result.utc_offset_known is False


def test_subsecond_time():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:00", 0x9291: "123", 0x9011: "+00:00"}))
    assert result.captured_at == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)


def test_modification_time_in_ifd0_is_not_used():
    result = read_photo_exif(photo(ifd0={0x0132: "2024:05:01 10:00:00"}))  # DateTime (edited-at), IFD0
    assert result.captured_at is None


def test_time_and_gps_together_from_png_and_webp():
    for fmt in ("PNG", "WEBP"):
        result = read_photo_exif(
            photo(fmt, exif_ifd={0x9003: "2023:01:02 03:04:05", 0x9011: "+01:00"},
                  gps={1: "N", 2: (R(48), R(51), R(2364, 100)), 3: "E", 4: (R(2), R(21), R(792, 100))})
        )
        assert result == PhotoExif(
            captured_at=datetime(2023, 1, 2, 2, 4, 5, tzinfo=timezone.utc),
            lat=Decimal("48.856567"),
            lng=Decimal("2.352200"),
            utc_offset_known=True,
            time_source="offset",
        )


# --------------------------------------------------------------------------- nothing / garbage


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_no_exif(fmt):
    result = read_photo_exif(photo(fmt))
    assert (result.captured_at, result.lat, result.lng) == (None, None, None)


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "2024:13:45 25:61:00",
        "2024:02:30 10:00:00",
        "0000:00:00 00:00:00",
        "    :  :     :  :  ",
        "",
        "2024:05:01",
        "2024:05:01 10:00:00 extra",
    ],
)
def test_garbage_datetime_gives_none(value):
    assert read_photo_exif(photo(exif_ifd={0x9003: value})).captured_at is None


def test_garbage_offset_falls_back_to_the_utc_assumption():
    for offset in ("+99:00", "+02:75", "02:00", "garbage", "+15:00"):
        result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:00", 0x9011: offset}))
        assert result.captured_at == datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc), offset
        assert result.utc_offset_known is False


def test_garbage_subseconds_are_ignored():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:00", 0x9291: "12a"}))
    assert result.captured_at == datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


GOOD_LAT = (R(4), R(19), R(30))
GOOD_LNG = (R(15), R(18), R(47))


@pytest.mark.parametrize(
    ("gps", "lat_none", "lng_none"),
    [
        ({1: "N", 2: (R(4), R(19), R(30, 0)), 3: "E", 4: GOOD_LNG}, True, False),  # x/0
        ({1: "X", 2: GOOD_LAT, 3: "E", 4: GOOD_LNG}, True, False),  # unknown ref
        ({2: GOOD_LAT, 3: "E", 4: GOOD_LNG}, True, False),  # missing ref: hemisphere unknown
        ({1: "N", 2: GOOD_LAT, 3: "N", 4: GOOD_LNG}, False, True),  # latitude ref on longitude
        ({1: "N", 2: (R(4), R(75), R(0)), 3: "E", 4: GOOD_LNG}, True, False),  # 75 minutes
        ({1: "N", 2: (R(4), R(0), R(61)), 3: "E", 4: GOOD_LNG}, True, False),  # 61 seconds
        ({1: "N", 2: (R(95), R(0), R(0)), 3: "E", 4: GOOD_LNG}, True, False),  # |lat| > 90
        ({1: "N", 2: GOOD_LAT, 3: "E", 4: (R(181), R(0), R(0))}, False, True),  # |lng| > 180
        ({1: "N", 2: (R(1), R(2), R(3), R(4)), 3: "E", 4: GOOD_LNG}, True, False),  # 4 parts
        ({1: "N", 2: GOOD_LAT, 3: "E", 4: ()}, False, True),  # empty
        ({1: b"\xff", 2: GOOD_LAT, 3: "E", 4: GOOD_LNG}, True, False),  # non-ASCII ref
        ({1: "N", 2: GOOD_LAT, 3: "E", 4: GOOD_LNG, 9: "V"}, True, True),  # GPSStatus: void
    ],
)
def test_garbage_gps_gives_none_field(gps, lat_none, lng_none):
    result = read_photo_exif(photo(gps=gps))
    assert (result.lat is None, result.lng is None) == (lat_none, lng_none)


def test_good_values_used_in_garbage_cases_are_good():
    result = read_photo_exif(photo(gps={1: "N", 2: GOOD_LAT, 3: "E", 4: GOOD_LNG, 9: "A"}))
    assert result.lat == Decimal("4.325000") and result.lng == Decimal("15.313056")


@pytest.mark.parametrize(
    "raw",
    [
        b"Exif\x00\x00" + b"\x00" * 40,
        b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",  # IFD offset far past the end
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x02\x87\x69\x00\x04\x00\x00\x00\x01\x7f\xff\xff\xff"
        b"\x88\x25\x00\x04\x00\x00\x00\x01\x7f\xff\xff\xff\x00\x00\x00\x00",  # sub-IFD pointers into nowhere
        b"garbage that is not even EXIF",
    ],
)
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_garbage_exif_blob_never_raises(raw):
    result = read_photo_exif(photo(raw_exif=raw))
    assert (result.captured_at, result.lat, result.lng) == (None, None, None)


class FakeExif(dict):
    """Stands in for Image.Exif to feed Python values no Pillow writer would produce."""

    def __init__(self, ifds):
        super().__init__()
        self.ifds = ifds

    def get_ifd(self, tag):
        if isinstance(self.ifds.get(tag), Exception):
            raise self.ifds[tag]
        return self.ifds.get(tag, {})


class FakeImage:
    def __init__(self, ifds):
        self.exif = FakeExif(ifds)

    def getexif(self):
        return self.exif


@pytest.mark.parametrize(
    "value",
    [
        "4 deg 19' 30\"",
        (4.0, 19.0, 30.0),  # floats are refused, never converted
        (Decimal(4), 19, 30),
        (True, 0, 0),
        (None, 0, 0),
        ((4, 1), (19, 1), (30, "x")),
        4,
        {"d": 4},
        (10**400, 1, 1),
    ],
)
def test_odd_python_values_give_none(value):
    result = read_photo_exif(FakeImage({GPS_IFD: {1: "N", 2: value, 3: "E", 4: GOOD_LNG}}))
    assert result.lat is None
    assert result.lng == Decimal("15.313056")


def test_accepted_python_rational_shapes():
    shapes = (Fraction(4), (19, 1), 30)  # Fraction, (num, den) pair, int
    result = read_photo_exif(FakeImage({GPS_IFD: {1: "N", 2: shapes, 3: "E", 4: GOOD_LNG}}))
    assert result.lat == Decimal("4.325000")


def test_get_ifd_raising_or_returning_junk():
    result = read_photo_exif(FakeImage({EXIF_IFD: ValueError("boom"), GPS_IFD: "not a dict"}))
    assert result == PhotoExif(None, None, None, utc_offset_known=False, has_exif=False)
    result = read_photo_exif(FakeImage({EXIF_IFD: {0x9003: 20240501, 0x9011: b"+02:00"}}))
    assert result.captured_at is None
    result = read_photo_exif(FakeImage({EXIF_IFD: {0x9003: b"2024:05:01 10:00:00\x00", 0x9011: b"+02:00\x00"}}))
    assert result.captured_at == datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)


def test_extreme_dates_do_not_overflow():
    for value, offset in (("0001:01:01 00:00:00", "+01:00"), ("9999:12:31 23:59:59", "-01:00")):
        result = read_photo_exif(FakeImage({EXIF_IFD: {0x9003: value, 0x9011: offset}}))
        assert result.captured_at is None


def test_object_whose_getexif_raises():
    class Broken:
        def getexif(self):
            raise SyntaxError("bad exif")

    assert read_photo_exif(Broken()) == PhotoExif(None, None, None, utc_offset_known=False, has_exif=False)


def test_photo_exif_is_frozen():
    value = PhotoExif(captured_at=None, lat=Decimal("1.000000"), lng=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.lat = Decimal(0)  # type: ignore[misc]
    assert value.utc_offset_known is True  # built by hand: checked strictly


# --------------------------------------------------------------------------- issue #12: read carefully


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((R(4), R(19), R(60)), Decimal("4.333333")),  # 60 seconds carry: 4° 20′ 00″
        ((R(4), R(59), R(60)), Decimal("5.000000")),  # 59′ 60″ carries into the degree
        ((R(4), R(60), R(0)), Decimal("5.000000")),  # 60 minutes
        ((R(15), R(18), R(5999, 100)), dms(15, 18, Fraction(5999, 100))),  # 59.99″ is not rounded away
    ],
)
def test_dms_rounding_edge_cases_carry(parts, expected):
    result = read_photo_exif(photo(gps={1: "S", 2: parts, 3: "E", 4: parts}))
    assert result.lat == -expected and result.lng == expected and result.gps_problems == ()


@pytest.mark.parametrize(
    ("gps", "field", "reason_part"),
    [
        ({1: "N", 2: GOOD_LAT, 3: "E", 4: (R(15), R(18), R(61))}, "GPSLongitude", "above 60"),
        ({1: "N", 2: GOOD_LAT, 3: "E", 4: (R(15), R(18), R(47, 0))}, "GPSLongitude", "zero denominator"),
        ({1: "N", 2: GOOD_LAT, 3: "Q", 4: GOOD_LNG}, "GPSLongitudeRef", "E or W"),
        ({1: "N", 2: GOOD_LAT, 4: GOOD_LNG}, "GPSLongitudeRef", "E or W"),
        ({1: "N", 2: GOOD_LAT, 3: "E"}, "GPSLongitude", "missing"),
        ({1: "N", 2: (R(91), R(0), R(0)), 3: "E", 4: GOOD_LNG}, "GPSLatitude", "more than 90"),
        ({1: "N", 2: GOOD_LAT, 3: "E", 4: GOOD_LNG, 9: "V"}, "GPSStatus", "void"),
    ],
)
def test_unreadable_gps_names_the_field(gps, field, reason_part):
    result = read_photo_exif(photo(gps=gps))
    assert [p["field"] for p in result.gps_problems] == [field]
    assert reason_part in result.gps_problems[0]["reason"]


def test_absent_gps_is_not_a_problem():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:00", 0x9011: "+02:00"}))
    assert (result.lat, result.lng, result.gps_problems) == (None, None, ())


GPS_TIME = {29: "2024:05:01", 7: (R(8), R(0), R(30))}


def test_gps_time_gives_the_instant_when_the_offset_is_missing():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:30"}, gps={**GPS_TIME}))
    assert result.captured_at == datetime(2024, 5, 1, 8, 0, 30, tzinfo=timezone.utc)
    assert result.utc_offset_known is True and result.time_source == "gps" and result.time_problems == ()


def test_gps_time_agreeing_with_the_offset_is_fine_and_the_offset_wins():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:31", 0x9011: "+02:00"}, gps={**GPS_TIME}))
    assert result.captured_at == datetime(2024, 5, 1, 8, 0, 31, tzinfo=timezone.utc)
    assert result.time_source == "offset" and result.time_problems == ()


def test_gps_time_contradicting_date_time_original_is_reported():
    with_offset = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:03 10:00:00", 0x9011: "+02:00"}, gps={**GPS_TIME}))
    assert [p["field"] for p in with_offset.time_problems] == ["GPSTimeStamp"]
    without = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:03 10:00:00"}, gps={**GPS_TIME}))
    assert without.time_source == "assumed_utc" and [p["field"] for p in without.time_problems] == ["GPSTimeStamp"]


def test_garbage_gps_time_is_ignored():
    result = read_photo_exif(photo(exif_ifd={0x9003: "2024:05:01 10:00:00"}, gps={29: "2024:05:01", 7: (R(25), R(0), R(0))}))
    assert result.gps_time is None and result.time_source == "assumed_utc"


def test_camera_and_software_are_read():
    result = read_photo_exif(photo(ifd0={0x010F: "TECNO", 0x0110: "CAMON 20", 0x0131: "Adobe Photoshop 25.0"}))
    assert (result.make, result.model, result.software, result.has_exif) == ("TECNO", "CAMON 20", "Adobe Photoshop 25.0",
                                                                            True)
    assert read_photo_exif(photo()).has_exif is False
