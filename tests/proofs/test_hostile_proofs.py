"""Issue #12, done-when: a hostile corpus through POST /proofs, against milestones
with and without rules → zero auto-approvals and zero payouts, each with its
precise warning (or its 422); a clean geotagged photo inside a geofence, taken
after the escrow was created, still auto-approves and pays."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.utils import timezone
from PIL.TiffImagePlugin import IFDRational as R

from escrow.models import EscrowAgreement
from payments.models import Payment
from proofs.models import Proof
from tests.conftest import assert_error
from tests.factories import fund, make_escrow
from tests.proofs.invoice_samples import render_pdf
from tests.proofs.photo_samples import geotagged_jpeg, jpeg_with_gps, plain_jpeg, reworked, scene
from tests.proofs.test_documents_and_ai import FR, REQUIREMENTS, invoice_escrow, upload_invoice
from tests.proofs.test_proof_upload import SITE, upload

pytestmark = pytest.mark.django_db

NOW = timezone.now
FENCE = {"lat": SITE[0], "lng": SITE[1], "radius_m": Decimal("100")}
NEAR = (SITE[0] + Decimal("0.000200"), SITE[1])  # ~22 m from the centre


def ruled(client, *, max_age=48, opened_ago=None):
    """A milestone with a geofence and a maximum photo age."""
    return _escrow(client, opened_ago, geofence=FENCE, proof_requirements={"max_photo_age_hours": max_age})


def bare(client, *, opened_ago=None):
    """A milestone with no rule at all."""
    return _escrow(client, opened_ago)


def _escrow(client, opened_ago, **milestone):
    escrow = fund(make_escrow(client=client, amounts=("100.00",), proof_type="PHOTO", **milestone))
    if opened_ago is not None:
        EscrowAgreement.objects.filter(pk=escrow.pk).update(created_at=NOW() - opened_ago)
    return escrow


def pending_with(api, escrow, content, code: str) -> dict:
    response = upload(api, escrow, content)
    assert response.status_code == 201, response.content
    body = response.json()
    codes = [w["code"] for w in body["validation"]["warnings"]]
    assert body["status"] == "PENDING" and not body["decided_by"], body
    assert code in codes, (code, codes)
    assert body["validation"]["auto_approval"]["decision"] == "review"
    assert body["validation"]["auto_approval"]["rule"] in codes
    assert body["review"]["note_required"] is True
    return body


GPS_61_SECONDS = {1: "S", 2: (R(4), R(19), R(30)), 3: "E", 4: (R(15), R(18), R(61))}


def test_hostile_corpus_never_auto_approves_nor_pays(sender_api, keyed_client, django_capture_on_commit_callbacks):
    api = sender_api
    with django_capture_on_commit_callbacks(execute=True):
        # -- milestones WITH rules (geofence + max age) -------------------------------------------
        pending_with(api, ruled(api.user), plain_jpeg(), "exif_missing")
        pending_with(api, ruled(api.user), geotagged_jpeg(None, None, NOW()), "gps_missing")
        far = (SITE[0] + Decimal("0.010000"), SITE[1])
        assert_error(upload(api, ruled(api.user), geotagged_jpeg(*far, NOW())), 422, "outside_geofence")
        assert_error(upload(api, ruled(api.user, opened_ago=timedelta(days=10)),
                            geotagged_jpeg(*NEAR, NOW() - timedelta(hours=72))), 422, "photo_too_old")
        before = pending_with(api, ruled(api.user, max_age=24 * 30), geotagged_jpeg(*NEAR, NOW() - timedelta(days=2)),
                              "captured_before_window")
        assert before["validation"]["auto_approval"]["rule"] == "captured_before_window"
        assert_error(upload(api, ruled(api.user), geotagged_jpeg(*NEAR, NOW() + timedelta(hours=2))), 422,
                     "photo_in_future")
        unreadable = pending_with(api, ruled(api.user), jpeg_with_gps(GPS_61_SECONDS, NOW()), "gps_unreadable")
        warning = next(w for w in unreadable["validation"]["warnings"] if w["code"] == "gps_unreadable")
        assert warning["field"] == "GPSLongitude" and "above 60" in warning["reason"]
        assert "gps_missing" not in [w["code"] for w in unreadable["validation"]["warnings"]]
        assert unreadable["exif"]["lat"] == "-4.325000" and unreadable["exif"]["lng"] is None
        pending_with(api, ruled(api.user), geotagged_jpeg(*NEAR, NOW(), software="Adobe Photoshop 25.0"), "photo_edited")
        pending_with(api, ruled(api.user), geotagged_jpeg(*NEAR, NOW(), camera=None), "camera_unknown")

        # -- milestones WITHOUT rules -------------------------------------------------------------
        pending_with(api, bare(api.user), plain_jpeg(), "exif_missing")
        pending_with(api, bare(api.user), geotagged_jpeg(None, None, NOW()), "gps_missing")
        pending_with(api, bare(api.user), geotagged_jpeg(SITE[0] + 1, SITE[1], NOW()), "no_geofence")
        pending_with(api, bare(api.user, opened_ago=timedelta(days=10)),
                     geotagged_jpeg(*NEAR, NOW() - timedelta(hours=96)), "photo_too_old_for_auto_approval")
        pending_with(api, bare(api.user), geotagged_jpeg(*NEAR, datetime(2025, 1, 1, tzinfo=dt_timezone.utc)),
                     "captured_before_window")
        pending_with(api, bare(api.user), geotagged_jpeg(*NEAR, NOW() + timedelta(hours=2)), "captured_after_upload")
        pending_with(api, bare(api.user), jpeg_with_gps(GPS_61_SECONDS, NOW()), "gps_unreadable")
        pending_with(api, bare(api.user), geotagged_jpeg(*NEAR, NOW(), software="GIMP 2.10.36"), "photo_edited")

        # -- a photo re-used by another tenant after resize + 5 % crop + re-compression ----------
        original = upload(api, ruled(api.user), geotagged_jpeg(*NEAR, NOW(), image=scene(12)))
        assert original.json()["status"] == "APPROVED"  # the first one is genuine and pays
        stranger = keyed_client(["sender"])
        for escrow, corner in ((ruled(stranger.user), "top-left"), (bare(stranger.user), "bottom-right")):
            copy = geotagged_jpeg(*NEAR, NOW(), image=reworked(scene(12), corner=corner))
            body = pending_with(stranger, escrow, copy, "photo_reused")
            reused = next(w for w in body["validation"]["warnings"] if w["code"] == "photo_reused")
            assert "earlier_proof_id" not in reused and str(original.json()["id"]) not in reused["message"]
            assert "photo_reused" in body["review"]["flags"]
        # the owner sees which of their own proofs it matches
        mine = pending_with(api, ruled(api.user), geotagged_jpeg(*NEAR, NOW(), image=reworked(scene(12), corner="centred")),
                            "photo_reused")
        assert next(w for w in mine["validation"]["warnings"] if w["code"] == "photo_reused")["earlier_proof_id"] == \
            original.json()["id"]

        # -- invoices failing amount or supplier ---------------------------------------------------
        wrong_amount = invoice_escrow(api.user, requirements={**REQUIREMENTS, "expected_amount": "2000.00"})
        wrong_supplier = invoice_escrow(api.user, requirements={**REQUIREMENTS, "supplier": "Someone Else SARL"})
        invoice_ids = [upload_invoice(api, wrong_amount).json()["id"],
                       upload_invoice(api, wrong_supplier, render_pdf(FR) + b"\n%second copy\n").json()["id"]]

    for proof_id, check in zip(invoice_ids, ("amount", "supplier")):
        body = api.get(f"/api/v1/proofs/{proof_id}").json()
        assert body["status"] == "PENDING" and body["validation"]["auto_approval"]["rule"] == "documents_are_reviewed"
        assert f"check_failed:{check}" in body["review"]["flags"] and body["review"]["note_required"]

    approved = Proof.objects.filter(status="APPROVED")
    assert list(approved.values_list("pk", flat=True)) == [original.json()["id"]]  # the genuine original only
    assert Payment.objects.count() == 1 and Payment.objects.get().milestone_id == approved.get().milestone_id


def test_clean_geotagged_photo_after_escrow_creation_still_auto_approves_and_pays(
        sender_api, django_capture_on_commit_callbacks):
    escrow = ruled(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(sender_api, escrow, geotagged_jpeg(*NEAR, NOW()))
    body = response.json()
    assert body["status"] == "APPROVED" and body["decided_by"] == "system:auto"
    assert body["validation"]["auto_approval"] == {
        "decision": "approved", "rule": "all_rules_passed",
        "reason": body["validation"]["auto_approval"]["reason"]}
    assert body["validation"]["warnings"] == [] and body["review"]["note_required"] is False
    assert Payment.objects.filter(milestone__escrow=escrow).count() == 1
