"""A milestone closed by any path — a proof decision, the client's approval, the
deadline policy, a dispute resolution — takes its other pending proofs out of the
review queue as SUPERSEDED (escrow.hooks → proofs.services.proof_supersede_pending)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from escrow.models import MilestoneStatus
from kobatela.audit.models import AuditLog
from payments.models import Payment
from proofs import services
from proofs.models import Proof
from tests.conftest import assert_error
from tests.factories import fund, make_escrow
from tests.proofs.test_documents_and_ai import REQUIREMENTS, invoice_escrow, upload_invoice
from tests.proofs.test_review_queue_and_jobs import other_pdf

pytestmark = pytest.mark.django_db
QUEUE = reverse("admin:proofs_proof_changelist")


def post(api, url: str, body: dict | None = None):
    return api.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)


def two_pending(api, escrow, django_capture_on_commit_callbacks) -> list[int]:
    """Two proofs of milestone 1, PENDING, their OCR queued and never run."""
    with django_capture_on_commit_callbacks(execute=False):
        ids = [upload_invoice(api, escrow, other_pdf(n)).json()["id"] for n in (1, 2)]
    assert list(Proof.objects.filter(pk__in=ids).values_list("status", "ocr_status")) == [("PENDING", "QUEUED")] * 2
    return ids


def assert_superseded_and_out_of_the_queues(ids, support_api, admin_client, why: str):
    for proof in Proof.objects.filter(pk__in=ids):
        assert (proof.status, proof.decided_by_label) == ("SUPERSEDED", "system:superseded")
        assert (proof.ocr_status, proof.ocr_error) == ("SKIPPED", "superseded")
        assert why in proof.decision_note
        assert AuditLog.objects.filter(action="proof.superseded", entity_id=str(proof.pk)).count() == 1
    api_queue = support_api.get("/api/v1/proofs?status=PENDING&order=review").json()["results"]
    assert not set(ids) & {p["id"] for p in api_queue}
    review_order = {p["id"]: p["status"] for p in support_api.get("/api/v1/proofs?order=review").json()["results"]}
    assert all(review_order[pk] == "SUPERSEDED" for pk in ids)
    admin_queue = admin_client.get(QUEUE)  # the changelist opens as the queue: pending proofs only
    assert admin_queue.status_code == 200
    assert not set(ids) & {p.pk for p in admin_queue.context["cl"].result_list}
    superseded_tab = admin_client.get(QUEUE, {"queue": "superseded"})
    assert set(ids) <= {p.pk for p in superseded_tab.context["cl"].result_list}
    # acting on them is a 409, and their queued OCR/AI jobs refuse them
    for pk in ids:
        assert_error(post(support_api, f"/api/v1/proofs/{pk}/decision", {"decision": "approve", "note": "n"}), 409,
                     "proof_already_decided")
        assert services.proof_run_ocr(proof_id=pk) == "SKIPPED"


def test_client_approval_supersedes_every_pending_proof(sender_api, support_api, admin_client,
                                                        django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    ids = two_pending(sender_api, escrow, django_capture_on_commit_callbacks)
    approved = post(sender_api, f"/api/v1/escrows/{escrow.pk}/client-approve")
    assert approved.status_code == 200, approved.content
    assert approved.json()["milestones"][0]["status"] == "APPROVED"
    assert_superseded_and_out_of_the_queues(ids, support_api, admin_client, "client_approved")
    assert Payment.objects.filter(milestone__escrow=escrow).count() == 1


def test_deadline_auto_approval_supersedes_every_pending_proof(sender_api, support_api, admin_client,
                                                               django_capture_on_commit_callbacks):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("2487.00",), currency="EUR", proof_type="INVOICE",
                              proof_requirements=REQUIREMENTS, deadline_in=timedelta(days=1)))
    ids = two_pending(sender_api, escrow, django_capture_on_commit_callbacks)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        late = post(sender_api, f"/api/v1/escrows/{escrow.pk}/check-deadline")
    assert late.status_code == 200, late.content
    assert late.json()["deadline_outcome"]["approved"] == [1]
    assert_superseded_and_out_of_the_queues(ids, support_api, admin_client, "deadline_auto_approved")


def test_dispute_resolution_supersedes_every_pending_proof(sender_api, support_api, admin_client,
                                                           django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    ids = two_pending(sender_api, escrow, django_capture_on_commit_callbacks)
    opened = post(sender_api, f"/api/v1/escrows/{escrow.pk}/disputes", {"reason": "Wrong goods."})
    assert opened.status_code == 201, opened.content
    dispute = opened.json()
    assert Proof.objects.filter(pk__in=ids, status="PENDING").count() == 2  # opening decides nothing yet
    with django_capture_on_commit_callbacks(execute=False):  # the refund's PSP call is not the point here
        resolved = post(support_api, f"/api/v1/disputes/{dispute['id']}/resolve",
                        {"release_amount": "1000.00", "refund_amount": "1487.00", "note": "Split."})
    assert resolved.status_code == 200, resolved.content
    assert escrow.milestones.get().status == MilestoneStatus.RESOLVED
    assert_superseded_and_out_of_the_queues(ids, support_api, admin_client, f"dispute {dispute['id']} resolved")


def test_a_proof_decision_supersedes_the_others_not_the_decided_one(sender_api, support_api, admin_client,
                                                                    django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=False):
        decided, *others = [upload_invoice(sender_api, escrow, other_pdf(n)).json()["id"] for n in (1, 2, 3)]
    response = post(support_api, f"/api/v1/proofs/{decided}/decision", {"decision": "approve", "note": "Checked."})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "APPROVED"
    proof = Proof.objects.get(pk=decided)
    assert (proof.status, proof.decision_note) == ("APPROVED", "Checked.")
    assert not AuditLog.objects.filter(action="proof.superseded", entity_id=str(decided)).exists()
    assert_superseded_and_out_of_the_queues(others, support_api, admin_client, f"Proof #{decided} of this milestone")
    decision_row = AuditLog.objects.get(action="proof.approved", entity_id=str(decided))
    assert sorted(decision_row.data["superseded"]) == sorted(others)


def test_rejection_supersedes_nothing(sender_api, support_api, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=False):
        rejected, kept = [upload_invoice(sender_api, escrow, other_pdf(n)).json()["id"] for n in (1, 2)]
    response = post(support_api, f"/api/v1/proofs/{rejected}/decision", {"decision": "reject", "note": "Blurry."})
    assert response.status_code == 200 and response.json()["status"] == "REJECTED"
    assert Proof.objects.get(pk=kept).status == "PENDING"
