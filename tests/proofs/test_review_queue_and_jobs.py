"""Issue #12: one review priority (AI on or off), notes wherever something is
flagged, SUPERSEDED proofs, the AI job's claim / sweep / retries, audited reads."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from kobatela.audit.models import AuditLog
from payments.models import Payment
from proofs import services
from proofs.models import Proof
from tests.conftest import assert_error
from tests.proofs.invoice_samples import render_pdf
from tests.proofs.photo_samples import geotagged_jpeg
from tests.proofs.test_documents_and_ai import FR, REQUIREMENTS, invoice_escrow, upload_invoice
from tests.proofs.test_hostile_proofs import NEAR, ruled
from tests.proofs.test_proof_upload import upload
from tests.support.openai_server import LOW_RISK

pytestmark = pytest.mark.django_db
NOW = timezone.now


def other_pdf(n: int) -> bytes:
    return render_pdf(FR) + f"\n%copy {n}\n".encode()  # the same invoice, another file (another SHA-256)


def test_ai_off_failed_check_invoice_is_first_in_the_api_queue_and_needs_a_note(
        sender_api, support_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        clean = upload_invoice(sender_api, invoice_escrow(sender_api.user)).json()["id"]
        photo = upload(sender_api, ruled(sender_api.user), geotagged_jpeg(None, None, NOW())).json()["id"]
        failed_escrow = invoice_escrow(sender_api.user, requirements={**REQUIREMENTS, "expected_amount": "2000.00"})
        failed = upload_invoice(sender_api, failed_escrow, other_pdf(1)).json()["id"]
    queue = support_api.get("/api/v1/proofs?status=PENDING&order=review").json()["results"]
    assert [p["id"] for p in queue] == [failed, photo, clean]
    first = queue[0]
    assert first["ai"]["status"] == "DISABLED" and first["review"]["note_required"] is True
    assert "check_failed:amount" in first["review"]["flags"]
    assert queue[2]["review"] == {"priority": 0, "flags": [], "note_required": False}

    for decision in ("approve", "reject"):
        error = assert_error(support_api.post(f"/api/v1/proofs/{failed}/decision", {"decision": decision},
                                              format="json"), 400, "note_required")
        assert "the amount check failed" in error["message"]
        assert error["details"]["reasons"] == ["check_failed:amount"]
    assert Proof.objects.get(pk=failed).status == "PENDING"
    decided = support_api.post(f"/api/v1/proofs/{failed}/decision",
                               {"decision": "reject", "note": "Amount is 2487, milestone says 2000."}, format="json")
    assert decided.status_code == 200 and decided.json()["status"] == "REJECTED"
    # the clean one needs no note
    assert support_api.post(f"/api/v1/proofs/{clean}/decision", {"decision": "approve"},
                            format="json").status_code == 200


def test_a_pending_ai_verdict_requires_a_note(sender_api, support_api, ai_server, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=False):  # OCR and AI never run: the verdict stays pending
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    body = support_api.get(f"/api/v1/proofs/{proof_id}").json()
    assert body["ai"]["status"] == "QUEUED" and body["review"]["flags"] == ["ai_pending"]
    error = assert_error(support_api.post(f"/api/v1/proofs/{proof_id}/decision", {"decision": "approve"},
                                          format="json"), 400, "note_required")
    assert "the AI verdict is still pending" in error["message"]
    assert support_api.post(f"/api/v1/proofs/{proof_id}/decision", {"decision": "approve", "note": "Checked by hand."},
                            format="json").status_code == 200


def test_approving_one_proof_supersedes_the_others_and_stops_their_jobs(
        sender_api, support_api, ai_server, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        first = upload_invoice(sender_api, escrow).json()["id"]
    with django_capture_on_commit_callbacks(execute=False) as never_run:
        second = upload_invoice(sender_api, escrow, other_pdf(2)).json()["id"]
    assert Proof.objects.get(pk=second).ocr_status == "QUEUED"
    with django_capture_on_commit_callbacks(execute=True):
        approved = support_api.post(f"/api/v1/proofs/{first}/decision", {"decision": "approve"}, format="json")
    assert approved.status_code == 200, approved.content
    other = support_api.get(f"/api/v1/proofs/{second}").json()
    assert other["status"] == "SUPERSEDED" and other["decided_by"] == "system:superseded"
    assert other["ocr_status"] == "SKIPPED" and other["ai"]["status"] == "DISABLED"
    assert f"#{first}" in other["decision_note"] and other["review"]["note_required"] is False
    assert [p["id"] for p in support_api.get("/api/v1/proofs?status=SUPERSEDED").json()["results"]] == [second]
    assert second not in [p["id"] for p in support_api.get("/api/v1/proofs?status=PENDING").json()["results"]]
    # the OCR message the second proof had queued arrives late: its claim refuses a superseded proof
    requests_before = ai_server.request_count
    for callback in never_run:
        callback()
    assert services.proof_run_ocr(proof_id=second) == "SKIPPED"
    Proof.objects.filter(pk=second).update(ai_status="QUEUED")  # even a stray QUEUED is not claimed
    assert services.proof_run_ai(proof_id=second) == "QUEUED" and ai_server.request_count == requests_before
    assert services.proofs_sweep_ai(now=NOW() + timedelta(hours=1)) == 0
    assert_error(support_api.post(f"/api/v1/proofs/{second}/decision", {"decision": "approve"}, format="json"), 409,
                 "proof_already_decided")
    assert AuditLog.objects.filter(action="proof.superseded", entity_id=str(second)).count() == 1
    assert Payment.objects.filter(milestone_id=other["milestone_id"]).count() == 1


def test_ai_claim_is_taken_once(sender_api, ai_server, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=False):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    Proof.objects.filter(pk=proof_id).update(ocr_status="DONE")
    assert services._claim_ai(proof_id) is True
    assert services._claim_ai(proof_id) is False  # a second delivery while the first runs
    assert services.proof_run_ai(proof_id=proof_id) == "RUNNING" and ai_server.request_count == 0
    # a claim past AI_TIMEOUT_SECONDS + AI_STALE_MARGIN_SECONDS is a dead worker's: the sweep re-sends it
    Proof.objects.filter(pk=proof_id).update(ai_updated_at=NOW() - timedelta(minutes=5))
    assert services.proofs_sweep_ai() == 1  # eager in tests: the job ran
    proof = Proof.objects.get(pk=proof_id)
    assert proof.ai_status == "DONE" and proof.ai_attempts == 2 and ai_server.request_count == 1
    assert services.proof_run_ai(proof_id=proof_id) == "DONE" and ai_server.request_count == 1


def test_sweep_resends_a_lost_queued_ai_job(sender_api, ai_server, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=False):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    Proof.objects.filter(pk=proof_id).update(ocr_status="DONE")  # OCR done, but the AI message was lost
    assert services.proofs_sweep_ai() == 0  # too recent
    assert services.proofs_sweep_ai(now=NOW() + timedelta(minutes=6)) == 1
    assert Proof.objects.get(pk=proof_id).ai_status == "DONE" and ai_server.request_count == 1


def test_circuit_open_and_daily_cap_are_retried_then_recorded(sender_api, ai_server, settings,
                                                               django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=False):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    Proof.objects.filter(pk=proof_id).update(ocr_status="DONE")
    settings.AI_DAILY_CALL_LIMIT = 0
    outcomes = []
    for attempt in range(services.AI_MAX_ATTEMPTS):  # what the worker does: run, and retry while asked to
        try:
            outcomes.append(services.proof_run_ai(proof_id=proof_id, final_attempt=attempt == services.AI_MAX_ATTEMPTS - 1))
        except services.AiRetryable as exc:
            outcomes.append(f"retry:{exc.reason}")
            assert Proof.objects.get(pk=proof_id).ai_status == "QUEUED"  # the claim is given back
    assert outcomes == ["retry:daily_cap_reached"] * (services.AI_MAX_ATTEMPTS - 1) + ["FAILED"]
    assert Proof.objects.get(pk=proof_id).ai_error == "daily_cap_reached" and ai_server.request_count == 0


def test_rerun_ai_only_queues(sender_api, ai_server, django_capture_on_commit_callbacks):
    ai_server.set_reply(status=500)
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    assert Proof.objects.get(pk=proof_id).ai_status == "FAILED" and ai_server.request_count == 1
    ai_server.set_reply(json.dumps(LOW_RISK))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        out = StringIO()
        call_command("rerun_ai", "--all-failed", stdout=out)
    assert "AI queued" in out.getvalue() and ai_server.request_count == 1  # nothing ran in the command
    assert Proof.objects.get(pk=proof_id).ai_status == "QUEUED" and len(queued) == 1


def test_reads_of_proofs_files_and_payments_are_audited(sender_api, support_api, keyed_client,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proof = upload(sender_api, ruled(sender_api.user), geotagged_jpeg(*NEAR, NOW())).json()
    payment = Payment.objects.get()
    sender_api.get(f"/api/v1/proofs/{proof['id']}")
    b"".join(sender_api.get(f"/api/v1/proofs/{proof['id']}/file").streaming_content)
    support_api.get("/api/v1/proofs?status=APPROVED")
    sender_api.get(f"/api/v1/payments/{payment.pk}")
    sender_api.get("/api/v1/payments")
    rows = {(row.action, row.entity_type, row.entity_id): row for row in AuditLog.objects.filter(action__in=[
        "proof.read", "proof.file_read", "proof.listed", "payment.read", "payment.listed"])}
    assert set(rows) == {("proof.read", "proofs.proof", str(proof["id"])),
                         ("proof.file_read", "proofs.proof", str(proof["id"])),
                         ("proof.listed", "proofs.proof", "list"),
                         ("payment.read", "payments.payment", str(payment.pk)),
                         ("payment.listed", "payments.payment", "list")}
    listed = rows[("proof.listed", "proofs.proof", "list")]
    assert listed.data == {"ids": [proof["id"]], "query": {"status": "APPROVED"}}
    # another tenant's 404 leaves no read row
    stranger = keyed_client(["sender"])
    before = AuditLog.objects.count()
    assert_error(stranger.get(f"/api/v1/proofs/{proof['id']}"), 404)
    assert AuditLog.objects.count() == before


def test_listing_approved_proofs_reads_their_payouts_in_the_list_query(sender_api):
    """ProofRead's payment_id comes from the list's own query: the query count of a page
    does not grow with the approved proofs on it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from proofs.services import proof_submit
    from tests.factories import actor_for
    from tests.providers.world import clean_photo, photo_escrow

    def approve_one():
        escrow = photo_escrow(client=sender_api.user, amounts=("10.00",))
        proof = proof_submit(actor=actor_for(sender_api.user), escrow_id=escrow.pk, milestone_idx=1,
                             proof_type="PHOTO", upload=clean_photo())
        assert proof.status == "APPROVED"

    sender_api.get("/api/v1/proofs")  # warm the API key's cache
    counts, ids = [], []
    for batch in (1, 3):
        for _ in range(batch):
            approve_one()
        with CaptureQueriesContext(connection) as ctx:
            body = sender_api.get("/api/v1/proofs").json()
        counts.append(len(ctx.captured_queries))
        ids.append([proof["payment_id"] for proof in body["results"]])
    assert counts[0] == counts[1], counts
    assert len(ids[1]) == 4 and all(isinstance(pk, int) for pk in ids[1])
