"""May this photo pay on its own? Positive evidence only, and the rule that decided.

A photo proof pays automatically only when every rule below holds, each read
from the file itself (never from the client's form fields):

1. the image carries EXIF (``exif_missing``);
2. the milestone has a geofence (``no_geofence``: its photos always wait for a
   person, the warning says how to change that);
3. a GPS position (``gps_missing``) that is readable (``gps_unreadable``, with
   the tag and the reason) and inside the geofence (a position outside it is
   refused earlier, 422 ``outside_geofence``);
4. a capture time (``exif_time_missing``) whose tags agree
   (``exif_time_inconsistent``), inside the window
   ``[window_start − skew, upload time + skew]`` (``captured_before_window``,
   ``captured_after_upload``) and no older than the milestone's
   ``max_photo_age_hours`` or the platform default
   (``photo_too_old_for_auto_approval``). When the time zone is unknown (no
   ``OffsetTimeOriginal``, no GPS time) the window must hold for every real
   UTC offset (``capture_time_zone_unknown`` otherwise);
5. a camera make and model, and no editing software named
   (``camera_unknown``, ``photo_edited``: soft warnings);
6. no earlier proof on the platform looks the same (``photo_reused``, from
   the perceptual hashes below).

Any warning sends the photo to review. The first one is "the rule that
decided" and is returned with its message in ``validation.auto_approval``.

The perceptual hash is ``imagehash.phash`` (DCT, 64 bits) of the whole picture
and of five 5 %-cropped versions of it (each corner, and centred), on a
≤ 256 px greyscale copy. A re-upload is compared full-vs-variants both ways,
so a 5 % crop, a resize and a re-compression stay within a few bits (tests:
``tests/proofs/test_photo_trust.py``) while unrelated pictures are ≥ 16 bits
apart. Hashes are stored as signed 64-bit integers (PostgreSQL ``bigint``).

Pure Python (Pillow + imagehash): no Django, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import imagehash
from PIL import Image

from proofs.exif import PhotoExif
from proofs.geofence import UNKNOWN_OFFSET_FUTURE_SLACK, UNKNOWN_OFFSET_PAST_SLACK

#: Two hashes this close (Hamming distance, bits of 64) are the same picture.
REUSE_MAX_DISTANCE = 10
#: Bands for the indexed prefilter: a pair within BANDS − 1 bits shares a band exactly.
BANDS = 4
BAND_BITS = 64 // BANDS
HASH_SIDE = 256
CROP = 0.05
#: Names in EXIF ``Software`` that mean the picture went through an editor.
EDITING_SOFTWARE = ("photoshop", "lightroom", "gimp", "snapseed", "picsart", "affinity", "pixelmator", "paint.net",
                    "canva", "facetune", "fotor", "luminar", "capture one", "darktable", "rawtherapee", "vsco",
                    "faceapp", "remini", "pixlr", "paintshop", "corel", "acdsee", "photopea", "inpaint")


# --------------------------------------------------------------------------- #
# Perceptual hashes
# --------------------------------------------------------------------------- #


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _unsigned(value: int) -> int:
    return value & ((1 << 64) - 1)


def perceptual_hashes(image: Image.Image) -> list[int]:
    """[full, crop top-left, crop top-right, crop bottom-left, crop bottom-right, crop centred], signed 64-bit."""
    # Box-reduce by an integer factor first (cheap on a 5 MB photo), then greyscale, then the exact thumbnail.
    factor = max(1, min(image.size) // HASH_SIDE)
    small = image.reduce(factor) if factor > 1 and image.mode in ("L", "RGB", "RGBA", "LA") else image
    small = small.convert("L")
    small.thumbnail((HASH_SIDE, HASH_SIDE))
    w, h = small.size
    dx, dy = round(w * CROP), round(h * CROP)
    boxes = [(0, 0, w, h), (dx, dy, w, h), (0, dy, w - dx, h), (dx, 0, w, h - dy), (0, 0, w - dx, h - dy),
             (dx // 2, dy // 2, w - dx + dx // 2, h - dy + dy // 2)]
    return [_signed(int(str(imagehash.phash(small.crop(box))), 16)) for box in boxes]


def hamming(a: int, b: int) -> int:
    return (_unsigned(a) ^ _unsigned(b)).bit_count()


def band_keys(value: int) -> list[int]:
    """The prefilter keys of one hash: band number × 2¹⁶ + that band's 16 bits."""
    unsigned = _unsigned(value)
    return [(band << BAND_BITS) | ((unsigned >> (band * BAND_BITS)) & ((1 << BAND_BITS) - 1)) for band in range(BANDS)]


def reuse_distance(new: list[int], earlier: list[int]) -> int:
    """Smallest distance between a whole picture and the other's crops, both ways."""
    if not new or not earlier:
        return 64
    return min(min(hamming(new[0], h) for h in earlier), min(hamming(h, earlier[0]) for h in new))


# --------------------------------------------------------------------------- #
# The auto-approval verdict
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Verdict:
    warnings: list[dict] = field(default_factory=list)

    @property
    def auto_approve(self) -> bool:
        return not self.warnings

    def as_validation(self) -> dict:
        if self.auto_approve:
            return {"decision": "approved", "rule": "all_rules_passed",
                    "reason": "Approved automatically: the photo's own EXIF shows it was taken inside the milestone's "
                              "geofence, after the milestone opened and recently, by a camera, and it matches no "
                              "earlier proof."}
        first = self.warnings[0]
        return {"decision": "review", "rule": first["code"], "reason": first["message"],
                "rules_failed": [w["code"] for w in self.warnings]}


def _warn(code: str, message: str, **data: Any) -> dict:
    return {"code": code, "message": message, **data}


def assess(*, exif: PhotoExif, has_geofence: bool, distance_checked: bool, window_start: datetime, now: datetime,
           max_age_hours: int, skew_seconds: int, reuse: dict | None = None,
           check_warnings: list[dict] | None = None) -> Verdict:
    """Every reason this photo may not pay on its own, most decisive first.

    ``check_warnings``: what :func:`proofs.geofence.check_photo` already said
    (``gps_missing``, ``exif_time_missing``), kept and not repeated.
    ``reuse``: ``{"distance": int, "same_owner": bool, "proof_id": int|None}``
    for the closest earlier proof within :data:`REUSE_MAX_DISTANCE`, or None.
    """
    warnings: list[dict] = []
    seen = {w["code"] for w in check_warnings or []}

    def add(item: dict) -> None:
        if item["code"] not in seen:
            seen.add(item["code"])
            warnings.append(item)

    if reuse is not None:
        where = (f"proof #{reuse['proof_id']} of your own escrows" if reuse.get("same_owner") and reuse.get("proof_id")
                 else "a proof sent earlier on the platform")
        add(_warn("photo_reused", f"This picture matches {where} (perceptual hash {reuse['distance']} bits apart): "
                  "a re-used photo never pays automatically; send a new photo taken on site.",
                  distance=reuse["distance"], **({"earlier_proof_id": reuse["proof_id"]}
                                                  if reuse.get("same_owner") and reuse.get("proof_id") else {})))
    if not exif.has_exif:
        add(_warn("exif_missing", "The photo carries no EXIF data at all (no capture time, no position, no camera), "
                  "so nothing about it can be verified. Send the original file from the camera, not a screenshot or "
                  "a copy from a messaging app."))
    if not has_geofence:
        add(_warn("no_geofence", "This milestone has no geofence, so where the photo was taken cannot be checked and "
                  "it waits for a reviewer. To have photos approved automatically, create the milestone with a "
                  "geofence (lat, lng, radius_m)."))
    for warning in check_warnings or []:
        if warning["code"] == "gps_missing" and exif.gps_problems:
            continue  # the tags are there but unreadable: said precisely below
        warnings.append(warning)
    for problem in exif.gps_problems:
        add(_warn("gps_unreadable", f"The photo's GPS tag {problem['field']} could not be read ({problem['reason']}), "
                  "so its position cannot be verified.", field=problem["field"], reason=problem["reason"]))
    if exif.lat is None or exif.lng is None:
        if not exif.gps_problems and exif.has_exif:
            add(_warn("gps_missing", "The photo has no GPS position in its EXIF data, so its location cannot be "
                      "verified. Turn on location tagging in the camera app."))
    elif has_geofence and not distance_checked:
        add(_warn("gps_missing", "The photo's position could not be compared with the geofence."))
    for problem in exif.time_problems:
        add(_warn("exif_time_inconsistent", f"The photo's capture time tags disagree: {problem['reason']}.",
                  field=problem["field"]))
    _time_rules(exif, add, window_start=window_start, now=now, max_age_hours=max_age_hours, skew_seconds=skew_seconds)
    software = (exif.software or "").lower()
    editor = next((name for name in EDITING_SOFTWARE if name in software), None)
    if editor:
        add(_warn("photo_edited", f"The photo's EXIF names editing software ({exif.software}): it may have been "
                  "altered, so a person checks it.", software=exif.software))
    if exif.has_exif and not (exif.make and exif.model):
        add(_warn("camera_unknown", "The photo's EXIF names no camera make and model, as an edited or generated "
                  "image would: a person checks it."))
    return Verdict(warnings=warnings)


def _time_rules(exif: PhotoExif, add, *, window_start: datetime, now: datetime, max_age_hours: int,
                skew_seconds: int) -> None:
    captured = exif.captured_at
    if captured is None:
        if exif.has_exif:
            add(_warn("exif_time_missing", "The photo has no capture time (DateTimeOriginal) in its EXIF data, so "
                      "when it was taken cannot be verified."))
        return
    skew = timedelta(seconds=skew_seconds)  # camera clocks drift both ways
    latest = now + skew
    oldest = now - timedelta(hours=max_age_hours)
    window_start = window_start - skew
    shown = {"captured_at": captured.isoformat()}
    # With the zone unknown, the true instant is anywhere in [captured − 14 h, captured + 12 h].
    early = captured - (timedelta(0) if exif.utc_offset_known else UNKNOWN_OFFSET_FUTURE_SLACK)
    late = captured + (timedelta(0) if exif.utc_offset_known else UNKNOWN_OFFSET_PAST_SLACK)
    if early > latest:
        add(_warn("captured_after_upload", "The photo's capture time is after it was uploaded: the camera clock is "
                  "wrong or the time was edited.", **shown, uploaded_at=now.isoformat()))
    elif late < window_start:
        add(_warn("captured_before_window", "The photo was taken before this milestone could take proofs (before "
                  "the escrow was created or the previous milestone was approved): it cannot show work done for it.",
                  **shown, window_start=window_start.isoformat()))
    elif late < oldest:
        add(_warn("photo_too_old_for_auto_approval", f"The photo was taken more than {max_age_hours} hours before "
                  "it was uploaded: only recent photos are approved automatically.", **shown,
                  max_age_hours=max_age_hours))
    elif not exif.utc_offset_known and (early < window_start or early < oldest or late > latest):
        add(_warn("capture_time_zone_unknown", "The photo's capture time has no time zone (no OffsetTimeOriginal, no "
                  "GPS time), and depending on it the photo may fall outside the milestone's time window.", **shown))
