"""The photo panel of a proof's page: when and where the picture was taken
(EXIF), a map link, and where that lies against the milestone's geofence."""

from __future__ import annotations

from decimal import Decimal

from proofs.models import Proof

__all__ = ["geofence_edge", "photo_panel"]

CENTIMETRE = Decimal("0.01")


def geofence_edge(distance_m: Decimal, radius_m: Decimal) -> tuple[bool, Decimal]:
    """(inside?, metres to the edge, to the centimetre) for a photo ``distance_m``
    from the centre of a geofence of ``radius_m``.

    On the edge counts as inside, as in ``proofs.geofence.check_photo`` (the
    radius is inclusive). Both values are stored to the centimetre, so the
    rounding only fixes how the margin is written.
    """
    margin = (distance_m - radius_m).quantize(CENTIMETRE)
    return margin <= 0, abs(margin)


def photo_panel(proof: Proof, milestone) -> dict:
    photo: dict = {"captured_at": proof.exif_captured_at, "lat": proof.exif_lat, "lng": proof.exif_lng,
                   "distance_m": proof.distance_m, "warnings": (proof.validation or {}).get("warnings", [])}
    if proof.exif_lat is not None and proof.exif_lng is not None:
        photo["osm_url"] = (f"https://www.openstreetmap.org/?mlat={proof.exif_lat}&mlon={proof.exif_lng}"
                            f"#map=17/{proof.exif_lat}/{proof.exif_lng}")
    if milestone.has_geofence:
        photo["geofence"] = {"lat": milestone.geofence_lat, "lng": milestone.geofence_lng,
                             "radius_m": milestone.geofence_radius_m}
        if proof.distance_m is not None:
            photo["inside"], photo["edge_m"] = geofence_edge(proof.distance_m, milestone.geofence_radius_m)
    return photo
