"""A proof's page in the admin and the decision made there: through
proof_decide, POST only, CSRF-checked, permission proofs.decide_proof,
audited with the staff user."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from kobatela.audit.models import AuditLog
from payments.models import Payment
from proofs.models import Proof
from tests.admin.conftest import FLAGGED, REQUIREMENTS, logged_in, make_staff, submit_invoice, submit_photo

pytestmark = pytest.mark.django_db
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,4})?\b")


@pytest.fixture
def flagged(ai_server, django_capture_on_commit_callbacks) -> Proof:
    """An invoice whose total is above what the milestone expects, flagged high by the AI."""
    with django_capture_on_commit_callbacks(execute=True):  # OCR then the AI advisor run as the block closes
        proof = submit_invoice(ai_server=ai_server, ai_reply=FLAGGED,
                               requirements={**REQUIREMENTS, "expected_amount": "2000.00"})
    proof.refresh_from_db()
    return proof


def change_url(proof) -> str:
    return reverse("admin:proofs_proof_change", args=[proof.pk])


def decide(client, proof, **data):
    return client.post(reverse("admin:proofs_proof_decide", args=[proof.pk]), data, follow=True)


def texts(response) -> list[str]:
    """The messages the page showed (they were consumed by rendering it)."""
    return [str(m) for m in response.context["messages"]]


def test_detail_shows_the_invoice_against_the_milestone_and_the_ai_verdict(reviewer_client, flagged):
    assert flagged.ai_risk_level == "high", (flagged.ai_status, flagged.ai_error)
    assert flagged.backend_checks["overall"] == "fail"
    page = reviewer_client.get(change_url(flagged))
    assert page.status_code == 200
    html = page.content.decode()
    rows = {row["label"]: row for row in page.context["invoice_rows"]}
    assert rows["Amount"] == {"label": "Amount", "expected": "2000.00", "found": "2487.00", "status": "fail",
                              "mismatch": True}
    assert rows["Currency"]["status"] == "pass" and not rows["Currency"]["mismatch"]
    assert 'class="kb-mismatch"' in html
    assert "amount_mismatch" in html and "above the milestone" in html
    assert reverse("admin:proofs_proof_preview", args=[flagged.pk, "large"]) in html
    assert "required: the amount check failed; the AI advisor rates it high risk; the AI advisor flagged it" in html
    assert 'action="%s"' % reverse("admin:proofs_proof_decide", args=[flagged.pk]) in html
    full_iban = IBAN_RE.search(flagged.ocr_text).group(0)
    assert full_iban not in html and full_iban.replace(" ", "") not in html  # the OCR text is shown masked
    assert "****0189" in html
    assert "<select" not in html and 'name="status"' not in html  # nothing editable


def test_flagged_proof_needs_a_note_then_is_approved_by_the_staff_user(reviewer, reviewer_client, flagged,
                                                                     django_capture_on_commit_callbacks):
    refused = decide(reviewer_client, flagged, decision="approve", note="  ")
    assert refused.redirect_chain == [(change_url(flagged), 302)]
    assert texts(refused) == ["Explain the decision in a note: the amount check failed; the AI advisor rates it high "
                              "risk; the AI advisor flagged it."]
    assert Proof.objects.get(pk=flagged.pk).status == "PENDING"

    with django_capture_on_commit_callbacks(execute=True):
        approved = decide(reviewer_client, flagged, decision="approve", note="Supplier confirmed the extra work.")
    assert texts(approved) == [f"Proof #{flagged.pk} approved."]
    proof = Proof.objects.get(pk=flagged.pk)
    assert proof.status == "APPROVED" and proof.decided_by == reviewer
    assert proof.decided_by_label == f"staff:{reviewer.pk}" and proof.decision_note == "Supplier confirmed the extra work."
    row = AuditLog.objects.get(action="proof.approved", entity_id=str(proof.pk))
    assert row.actor == f"staff:{reviewer.pk}" and row.data["note"] == "Supplier confirmed the extra work."
    assert Payment.objects.get(milestone=proof.milestone).status == "SENT"

    page = reviewer_client.get(change_url(proof)).content.decode()
    assert 'id="kb-decided"' in page and reviewer.email in page and "Supplier confirmed the extra work." in page
    assert 'id="kb-decide-form"' not in page
    again = decide(reviewer_client, proof, decision="reject", note="changed my mind")
    assert texts(again) == ["The proof is already APPROVED."]


def test_rejection_without_ai_flag_needs_no_note(reviewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proof = submit_invoice()
    assert not proof.ai_flagged
    decide(reviewer_client, proof, decision="reject")
    proof.refresh_from_db()
    assert proof.status == "REJECTED" and proof.milestone.status == "REJECTED"


def test_decision_is_post_only_csrf_checked_and_needs_the_permission(reviewer, flagged):
    url = reverse("admin:proofs_proof_decide", args=[flagged.pk])
    assert logged_in(reviewer).get(url).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(reviewer)
    assert strict.post(url, {"decision": "approve", "note": "x"}).status_code == 403
    assert logged_in(reviewer).post(url, {"decision": "maybe"}).status_code == 400

    viewer = make_staff(None)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_proof"))
    viewer_client = logged_in(viewer)
    assert viewer_client.get(change_url(flagged)).status_code == 200
    assert 'id="kb-decide-form"' not in viewer_client.get(change_url(flagged)).content.decode()
    assert viewer_client.post(url, {"decision": "approve", "note": "x"}).status_code == 403
    assert Proof.objects.get(pk=flagged.pk).status == "PENDING"
    assert Client().post(url, {"decision": "approve", "note": "x"}).status_code == 302  # to the login page


def test_photo_detail_shows_exif_gps_and_the_geofence(reviewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proof = submit_photo(gps=True)  # ~33 m from the site, radius 100 m: verified and auto-approved
    assert proof.status == "APPROVED"
    page = reviewer_client.get(change_url(proof))
    photo = page.context["photo"]
    assert photo["lat"] == proof.exif_lat and photo["captured_at"] == proof.exif_captured_at
    assert photo["inside"] is True and photo["edge_m"] == 100 - proof.distance_m
    html = page.content.decode()
    assert f"https://www.openstreetmap.org/?mlat={proof.exif_lat}&amp;mlon={proof.exif_lng}" in html
    assert f"{proof.distance_m} m from the centre" in html and "inside" in html
    assert "system:auto" in html  # who decided: the photo rules


def test_unverifiable_photo_says_what_is_missing(reviewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proof = submit_photo(gps=False)
    assert proof.status == "PENDING"
    html = reviewer_client.get(change_url(proof)).content.decode()
    assert "gps_missing" in html and 'id="kb-decide-form"' in html


def test_previous_proofs_of_the_milestone_are_listed(reviewer_client, django_capture_on_commit_callbacks):
    from tests.proofs.invoice_samples import SAMPLES

    with django_capture_on_commit_callbacks(execute=True):
        first = submit_invoice()
    decide(reviewer_client, first, decision="reject", note="Wrong invoice")
    with django_capture_on_commit_callbacks(execute=True):
        second = submit_invoice(escrow=first.escrow, sample=SAMPLES[-1])
    page = reviewer_client.get(change_url(second))
    assert [p.pk for p in page.context["previous"]] == [first.pk]
    assert "Wrong invoice" in page.content.decode()
