"""proofs.photo_trust: the perceptual hash (chosen and bounded here) and the
auto-approval verdict, rule by rule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from proofs import photo_trust
from proofs.exif import PhotoExif
from proofs.photo_trust import REUSE_MAX_DISTANCE, assess, band_keys, hamming, perceptual_hashes, reuse_distance
from tests.proofs.photo_samples import reworked, scene

SCENES = 16


@pytest.fixture(scope="module")
def originals():
    return [scene(seed) for seed in range(SCENES)]


@pytest.fixture(scope="module")
def hashes(originals):
    return [perceptual_hashes(image) for image in originals]


@pytest.mark.parametrize("corner", ["top-left", "bottom-right", "centred"])
def test_resize_5_percent_crop_and_recompression_stay_within_the_threshold(originals, hashes, corner):
    distances = [reuse_distance(perceptual_hashes(reworked(image, corner=corner)), earlier)
                 for image, earlier in zip(originals, hashes)]
    print(f"\n{corner}: re-used distances {sorted(distances)} (threshold {REUSE_MAX_DISTANCE})")
    assert max(distances) <= REUSE_MAX_DISTANCE


def test_plain_resize_and_recompression_are_near_zero(originals, hashes):
    distances = [reuse_distance(perceptual_hashes(reworked(image, crop=0, scale=0.5, quality=40)), earlier)
                 for image, earlier in zip(originals, hashes)]
    assert max(distances) <= 4


def test_unrelated_pictures_are_far_beyond_the_threshold(hashes):
    distances = [reuse_distance(hashes[i], hashes[j]) for i in range(SCENES) for j in range(SCENES) if i != j]
    print(f"\nunrelated: min distance {min(distances)}")
    assert min(distances) > REUSE_MAX_DISTANCE + 2  # a margin, not a coin toss


def test_band_prefilter_finds_every_pair_within_three_bits():
    value = 0x0123_4567_89AB_CDEF
    for flips in ([0], [0, 17], [3, 20, 40], [15, 31, 47]):
        other = value
        for bit in flips:
            other ^= 1 << bit
        assert hamming(value, other) == len(flips)
        assert set(band_keys(value)) & set(band_keys(other))  # shares a band: found by the index
    assert photo_trust._signed(photo_trust._unsigned(-5)) == -5


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
OPENED = NOW - timedelta(days=2)


def exif(**overrides) -> PhotoExif:
    fields = dict(captured_at=NOW - timedelta(hours=1), lat=Decimal("1.000000"), lng=Decimal("2.000000"),
                  utc_offset_known=True, time_source="offset", make="TECNO", model="CAMON 20")
    return PhotoExif(**{**fields, **overrides})


def verdict(photo: PhotoExif, **overrides):
    args = dict(exif=photo, has_geofence=True, distance_checked=True, window_start=OPENED, now=NOW, max_age_hours=72,
                skew_seconds=300)
    return assess(**{**args, **overrides})


def first_rule(photo: PhotoExif, **overrides) -> str:
    return verdict(photo, **overrides).as_validation()["rule"]


def test_only_positive_evidence_auto_approves():
    assert verdict(exif()).auto_approve
    assert verdict(exif()).as_validation()["rule"] == "all_rules_passed"


@pytest.mark.parametrize(
    ("photo", "overrides", "rule"),
    [
        (exif(captured_at=None, lat=None, lng=None, make=None, model=None, has_exif=False), {}, "exif_missing"),
        (exif(), {"has_geofence": False, "distance_checked": False}, "no_geofence"),
        (exif(lat=None, lng=None), {"distance_checked": False}, "gps_missing"),
        (exif(lng=None, gps_problems=({"field": "GPSLongitude", "reason": "minutes or seconds above 60"},)),
         {"distance_checked": False}, "gps_unreadable"),
        (exif(captured_at=None), {}, "exif_time_missing"),
        (exif(captured_at=OPENED - timedelta(hours=1)), {}, "captured_before_window"),
        (exif(captured_at=NOW + timedelta(minutes=10)), {}, "captured_after_upload"),
        (exif(captured_at=NOW - timedelta(hours=30)), {"window_start": NOW - timedelta(days=10), "max_age_hours": 24},
         "photo_too_old_for_auto_approval"),
        (exif(captured_at=NOW - timedelta(hours=1), utc_offset_known=False, time_source="assumed_utc"), {},
         "capture_time_zone_unknown"),
        (exif(time_problems=({"field": "GPSTimeStamp", "reason": "differ"},)), {}, "exif_time_inconsistent"),
        (exif(software="Adobe Photoshop 25.0 (Windows)"), {}, "photo_edited"),
        (exif(make=None), {}, "camera_unknown"),
        (exif(), {"reuse": {"distance": 2, "same_owner": False, "proof_id": 9}}, "photo_reused"),
    ],
)
def test_each_rule_sends_the_photo_to_review_and_says_so(photo, overrides, rule):
    decided = verdict(photo, **overrides)
    assert not decided.auto_approve
    assert decided.as_validation()["rule"] == rule
    assert decided.as_validation()["reason"]


def test_another_tenants_proof_is_never_named():
    hidden = verdict(exif(), reuse={"distance": 1, "same_owner": False, "proof_id": 9}).warnings[0]
    assert "earlier_proof_id" not in hidden and "#9" not in hidden["message"]
    shown = verdict(exif(), reuse={"distance": 1, "same_owner": True, "proof_id": 9}).warnings[0]
    assert shown["earlier_proof_id"] == 9


def test_unknown_zone_well_inside_the_window_still_passes():
    photo = exif(captured_at=NOW - timedelta(hours=20), utc_offset_known=False, time_source="assumed_utc")
    assert verdict(photo).auto_approve  # every real UTC offset keeps it inside [opened, now + skew] and 72 h


def test_skew_allowance_at_both_ends():
    assert verdict(exif(captured_at=OPENED - timedelta(seconds=200))).auto_approve
    assert verdict(exif(captured_at=NOW + timedelta(seconds=200))).auto_approve
    assert first_rule(exif(captured_at=OPENED - timedelta(seconds=400))) == "captured_before_window"
