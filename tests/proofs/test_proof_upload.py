"""POST /proofs end to end: real files, real storage, real checks."""

import io
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from escrow.models import MilestoneStatus
from payments.models import Payment, PaymentStatus
from proofs.geofence import EARTH_RADIUS_M, distance_m
from proofs.models import Proof
from tests.conftest import assert_error
from tests.factories import fund, make_escrow
from tests.proofs.photo_samples import big_jpeg, geotagged_jpeg

pytestmark = pytest.mark.django_db

SITE = (Decimal("-4.325000"), Decimal("15.322200"))
NOW = timezone.now


def photo_escrow(client, *, radius="100", amounts=("100.00",), max_age=48, **extra):
    return fund(make_escrow(client=client, amounts=amounts, proof_type="PHOTO",
                            geofence={"lat": SITE[0], "lng": SITE[1], "radius_m": Decimal(radius)},
                            proof_requirements={"max_photo_age_hours": max_age}, **extra))


def upload(api, escrow, content, *, idx=1, type="PHOTO", name="photo.jpg", content_type="image/jpeg", **extra):
    data = {"escrow_id": escrow.pk, "milestone_idx": idx, "type": type,
            "file": SimpleUploadedFile(name, content, content_type=content_type), **extra}
    return api.post("/api/v1/proofs", data, format="multipart")


def north_of(lat: Decimal, metres: Decimal) -> Decimal:
    """A latitude ``metres`` north along the meridian, quantized to 6 decimals like EXIF here."""
    import math

    return (lat + Decimal(str(math.degrees(float(metres / EARTH_RADIUS_M))))).quantize(Decimal("0.000001"))


def test_clean_photo_auto_approves_and_pays_out(sender_api, django_capture_on_commit_callbacks):
    escrow = photo_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW()),
                          metadata='{"device": "field-phone-7"}')
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "APPROVED" and body["ocr_status"] == "SKIPPED" and body["ai"] is None
    assert body["exif"]["lat"] == "-4.325000" and body["exif"]["distance_m"] == "0.00"
    assert body["decided_by"] == "system:auto" and body["content_type"] == "image/jpeg"
    assert len(body["sha256"]) == 64 and body["size"] > 0
    milestone = escrow.milestones.get()
    assert milestone.status == MilestoneStatus.APPROVED
    assert Payment.objects.get(milestone=milestone).status == PaymentStatus.SENT


def test_outside_geofence_is_422_and_stores_nothing(sender_api):
    escrow = photo_escrow(sender_api.user)
    far = north_of(SITE[0], Decimal("250"))
    error = assert_error(upload(sender_api, escrow, geotagged_jpeg(far, SITE[1], NOW())), 422, "outside_geofence")
    (detail,) = error["details"]["errors"]
    assert Decimal(detail["distance_m"]) > 249 and detail["code"] == "outside_geofence"
    assert not Proof.objects.exists()
    assert escrow.milestones.get().status == MilestoneStatus.WAITING


def test_geofence_boundary_half_a_metre(sender_api, keyed_client):
    lat = north_of(SITE[0], Decimal("80"))
    exact = distance_m(SITE[0], SITE[1], lat, SITE[1])
    inside = photo_escrow(sender_api.user, radius=str((exact + Decimal("0.5")).quantize(Decimal("0.01"))))
    assert upload(sender_api, inside, geotagged_jpeg(lat, SITE[1], NOW())).json()["status"] == "APPROVED"
    outside = photo_escrow(sender_api.user, radius=str((exact - Decimal("0.5")).quantize(Decimal("0.01"))))
    assert_error(upload(sender_api, outside, geotagged_jpeg(lat, SITE[1], NOW())), 422, "outside_geofence")


def test_too_old_and_future_photos_are_422(sender_api):
    escrow = photo_escrow(sender_api.user, max_age=48)
    assert_error(upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW() - timedelta(hours=72))), 422, "photo_too_old")
    assert_error(upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW() + timedelta(hours=2))), 422, "photo_in_future")
    assert not Proof.objects.exists()


def test_missing_gps_goes_to_review_never_auto_approved(sender_api):
    escrow = photo_escrow(sender_api.user)
    body = upload(sender_api, escrow, geotagged_jpeg(None, None, NOW())).json()
    assert body["status"] == "PENDING"
    assert [w["code"] for w in body["validation"]["warnings"]] == ["gps_missing"]
    escrow.refresh_from_db()
    assert escrow.milestones.get().status == MilestoneStatus.PENDING_REVIEW and escrow.status == "RELEASABLE"
    assert not Payment.objects.filter(escrow=escrow).exists()


def test_client_metadata_cannot_stand_in_for_exif(sender_api):
    escrow = photo_escrow(sender_api.user)
    body = upload(sender_api, escrow, geotagged_jpeg(None, None, None),
                  metadata='{"lat": "-4.325", "lng": "15.3222", "captured_at": "2026-01-01T00:00:00Z"}').json()
    assert body["status"] == "PENDING" and body["exif"]["lat"] is None


def test_duplicate_file_is_409(sender_api):
    escrow = photo_escrow(sender_api.user)
    content = geotagged_jpeg(None, None, NOW())
    assert upload(sender_api, escrow, content).status_code == 201
    assert_error(upload(sender_api, escrow, content), 409, "duplicate_proof")
    assert Proof.objects.count() == 1


def test_only_the_current_milestone_of_its_type(sender_api):
    escrow = photo_escrow(sender_api.user, amounts=("60.00", "40.00"))
    error = assert_error(upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW()), idx=2), 409, "milestone_not_current")
    assert error["details"]["current_milestone_idx"] == 1
    assert_error(upload(sender_api, escrow, b"%PDF-1.4\n", type="INVOICE", name="x.pdf"), 409, "proof_type_mismatch")
    assert upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW())).json()["status"] == "APPROVED"
    assert_error(upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW()), idx=1), 409, "milestone_not_current")
    assert upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW()), idx=2).status_code == 201


@pytest.mark.parametrize(
    "content, name",
    [
        (b"%PDF-1.4 pretending to be a photo", "photo.jpg"),
        (b"<html><body>hi</body></html>", "photo.jpg"),
        (b"PK\x03\x04zipzipzip", "photo.jpg"),
        (b"\x00\x01\x02 random bytes \xff\xfe", "photo.png"),
        (b"GIF89a\x01\x00\x01\x00", "photo.gif"),
    ],
)
def test_type_is_decided_by_magic_bytes(sender_api, content, name):
    escrow = photo_escrow(sender_api.user)
    assert_error(upload(sender_api, escrow, content, name=name), 415, "unsupported_file_type")


def test_pixel_bomb_is_refused_fast(sender_api):
    escrow = photo_escrow(sender_api.user)
    buf = io.BytesIO()
    Image.new("L", (20000, 20000)).save(buf, "PNG", optimize=True)
    assert len(buf.getvalue()) < 2_000_000
    started = time.perf_counter()
    assert_error(upload(sender_api, escrow, buf.getvalue(), name="bomb.png", content_type="image/png"), 422, "image_too_large")
    assert time.perf_counter() - started < 1.0


def test_truncated_jpeg_is_400(sender_api):
    escrow = photo_escrow(sender_api.user)
    content = geotagged_jpeg(*SITE, NOW(), size=(400, 300))
    assert_error(upload(sender_api, escrow, content[: len(content) // 2]), 400, "file_corrupt")


def test_corrupt_pdf_is_400(sender_api):
    escrow = fund(make_escrow(client=sender_api.user, proof_type="INVOICE"))
    assert_error(upload(sender_api, escrow, b"%PDF-1.4\ngarbage", type="INVOICE", name="i.pdf"), 400, "file_corrupt")


def test_oversize_is_413(sender_api, settings):
    settings.PROOF_MAX_UPLOAD_MB = 1
    escrow = photo_escrow(sender_api.user)
    assert_error(upload(sender_api, escrow, big_jpeg(1_600_000)), 413, "payload_too_large")


def test_other_tenants_escrow_is_404(sender_api):
    other = photo_escrow(make_escrow().client)
    assert_error(upload(sender_api, other, geotagged_jpeg(*SITE, NOW())), 404, "escrow_not_found")


def test_unfunded_escrow_is_409(sender_api):
    escrow = make_escrow(client=sender_api.user)
    assert_error(upload(sender_api, escrow, geotagged_jpeg(*SITE, NOW())), 409, "escrow_is_draft")


@pytest.mark.parametrize("field, value", [("metadata", "not json"), ("metadata", "[1,2]"), ("milestone_idx", "x"),
                                          ("type", "SELFIE"), ("escrow_id", "-1")])
def test_bad_form_fields_are_400(sender_api, field, value):
    escrow = photo_escrow(sender_api.user)
    data = {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO",
            "file": SimpleUploadedFile("p.jpg", geotagged_jpeg(*SITE, NOW()), content_type="image/jpeg"), field: value}
    assert_error(sender_api.post("/api/v1/proofs", data, format="multipart"), 400, "validation_error")
    assert not Proof.objects.exists()


def test_missing_file_is_400(sender_api):
    escrow = photo_escrow(sender_api.user)
    response = sender_api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO"},
                               format="multipart")
    assert "file" in assert_error(response, 400, "validation_error")["details"]
