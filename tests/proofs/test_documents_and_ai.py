"""Invoices through the real OCR, document checks, the AI advisor (real openai
client against a local server), reading and deciding."""

import json
import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from payments.models import Payment
from proofs import ocr
from proofs.models import Proof
from tests.conftest import assert_error
from tests.factories import fund, make_escrow
from tests.proofs.invoice_samples import SAMPLES, render_pdf, render_scan_png
from tests.support.openai_server import LOW_RISK

pytestmark = pytest.mark.django_db

FR = next(s for s in SAMPLES if s.name == "fr_classic_eur")
REQUIREMENTS = {"expected_amount": "2487.00", "currency": "EUR", "iban_last4": "0189", "supplier": "Batiments Kivu",
                "date_from": "2026-03-01", "date_to": "2026-03-31"}
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,4})?\b")
FLAGGED = {"risk_level": "high", "score": 0.91, "flags": ["amount_mismatch"], "explanation": "Totals disagree."}


def invoice_escrow(client, requirements=REQUIREMENTS):
    return fund(make_escrow(client=client, amounts=("2487.00",), currency="EUR", proof_type="INVOICE",
                            proof_requirements=requirements))


def upload_invoice(api, escrow, content=None, name="invoice.pdf"):
    content = content if content is not None else render_pdf(FR)
    return api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "INVOICE",
                                       "file": SimpleUploadedFile(name, content)}, format="multipart")



def test_text_layer_invoice_is_read_and_checked(sender_api, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        created = upload_invoice(sender_api, escrow)
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "PENDING" and created.json()["ocr_status"] == "QUEUED"
    body = sender_api.get(f"/api/v1/proofs/{created.json()['id']}").json()
    assert body["ocr_status"] == "DONE"
    assert body["invoice"] == {"amount": "2487.00", "currency": "EUR", "date": "2026-03-04", "number": "FA-2026-0042",
                               "supplier": "Bâtiments Kivu SARL", "iban_last4": "0189",
                               "currency_evidence": "written:€"}
    assert body["backend_checks"]["overall"] == "pass", body["backend_checks"]
    assert body["ai"]["status"] == "DISABLED"
    full_iban = IBAN_RE.search(Proof.objects.get().ocr_text).group(0)
    raw = json.dumps(body)
    assert full_iban not in raw and full_iban.replace(" ", "") not in raw
    assert "ocr_text" not in raw and "Net" not in raw.replace("Network", "")


@pytest.mark.parametrize(("milestone_currency", "overall"), [("XAF", "pass"), ("XOF", "fail")])
def test_fcfa_invoice_says_which_evidence_decided_the_currency(
    sender_api, django_capture_on_commit_callbacks, milestone_currency, overall
):
    from tests.proofs.african_corpus import LAYOUTS

    cameroon = next(x for x in LAYOUTS if x.name == "cm_xaf_fr")
    escrow = fund(make_escrow(client=sender_api.user, amounts=("2862000",), currency=milestone_currency,
                              proof_type="INVOICE",
                              proof_requirements={"expected_amount": "2862000.00", "currency": milestone_currency}))
    with django_capture_on_commit_callbacks(execute=True):
        created = upload_invoice(sender_api, escrow, content=render_pdf(cameroon.sample))
    body = sender_api.get(f"/api/v1/proofs/{created.json()['id']}").json()
    # "CFA 2 862 000" with a Cameroonian IBAN: XAF, whatever the milestone expected
    assert body["invoice"]["currency"] == "XAF" and body["invoice"]["currency_evidence"] == "iban:CM"
    assert body["backend_checks"]["checks"]["currency"]["evidence"] == "iban:CM"
    assert body["backend_checks"]["overall"] == overall


def test_document_checks_report_mismatches(sender_api, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user, requirements={**REQUIREMENTS, "expected_amount": "2000.00",
                                                           "iban_last4": "9999"})
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    checks = sender_api.get(f"/api/v1/proofs/{proof_id}").json()["backend_checks"]
    assert checks["overall"] == "fail"
    assert checks["checks"]["amount"]["status"] == "fail" and checks["checks"]["iban_last4"]["status"] == "fail"
    assert checks["checks"]["currency"]["status"] == "pass"


@pytest.mark.skipif(not ocr.tesseract_available(), reason="Tesseract is installed by the test command")
def test_scanned_invoice_goes_through_tesseract(sender_api, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow, render_scan_png(FR), name="scan.png").json()["id"]
    proof = Proof.objects.get(pk=proof_id)
    assert proof.ocr_status == "DONE" and proof.ocr_source == "tesseract"
    assert proof.invoice_amount in (Decimal("2487.00"), None)  # missing is allowed, wrong never


def test_ocr_disabled(sender_api, settings, django_capture_on_commit_callbacks):
    settings.OCR_ENABLED = False
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        body = upload_invoice(sender_api, escrow).json()
    assert body["ocr_status"] == "DISABLED" and body["invoice"] is None


def test_ai_advisor_scores_without_seeing_personal_data(sender_api, ai_server, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    escrow.provider.full_name = "Jean-Baptiste Mukendi"
    escrow.provider.save()
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    ai = sender_api.get(f"/api/v1/proofs/{proof_id}").json()["ai"]
    assert ai["status"] == "DONE" and ai["risk_level"] == "low" and ai["score"] == "0.080"
    assert ai_server.request_count == 1
    sent = ai_server.raw_requests[0].decode()
    full_iban = IBAN_RE.search(Proof.objects.get().ocr_text).group(0)
    assert full_iban not in sent and full_iban.replace(" ", "") not in sent
    assert escrow.provider.email not in sent and escrow.client.email not in sent
    assert "Mukendi" not in sent
    assert "/media/" not in sent and "proofs/" not in sent


def test_flagged_proof_needs_a_note_then_approval_pays(sender_api, support_api, ai_server,
                                                      django_capture_on_commit_callbacks):
    ai_server.set_reply(json.dumps(FLAGGED))
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    url = f"/api/v1/proofs/{proof_id}/decision"
    assert sender_api.get("/api/v1/proofs?ai_risk_level=high").json()["results"][0]["id"] == proof_id
    assert_error(sender_api.post(url, {"decision": "approve"}, format="json"), 403, "permission_denied")
    assert_error(support_api.post(url, {"decision": "approve"}, format="json"), 400, "note_required")
    assert_error(support_api.post(url, {"decision": "approve", "note": "   "}, format="json"), 400, "note_required")
    with django_capture_on_commit_callbacks(execute=True):
        decided = support_api.post(url, {"decision": "approve", "note": "Called the supplier: totals match."},
                                   format="json")
    assert decided.status_code == 200, decided.content
    body = decided.json()
    assert body["status"] == "APPROVED" and body["decided_by"] == f"apikey:{support_api.api_key.pk}"
    assert body["decision_note"] == "Called the supplier: totals match." and body["decided_at"]
    assert Payment.objects.get(escrow=escrow).status == "SENT"
    assert_error(support_api.post(url, {"decision": "reject", "note": "x"}, format="json"), 409, "proof_already_decided")


def test_rejection_lets_a_new_proof_in(sender_api, support_api, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    rejected = support_api.post(f"/api/v1/proofs/{proof_id}/decision", {"decision": "reject", "note": "Blurry"},
                                format="json")
    assert rejected.json()["status"] == "REJECTED"
    assert escrow.milestones.get().status == "REJECTED"
    other = render_pdf(SAMPLES[-1])
    assert upload_invoice(sender_api, escrow, other).status_code == 201


def test_ai_timeout_and_errors_leave_the_proof_in_review(sender_api, ai_server, settings,
                                                         django_capture_on_commit_callbacks):
    settings.AI_TIMEOUT_SECONDS = 1.0
    ai_server.set_reply(json.dumps(LOW_RISK), delay=3)
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    proof = Proof.objects.get(pk=proof_id)
    assert proof.status == "PENDING" and proof.ai_status == "FAILED" and proof.ai_error == "timeout"
    assert ai_server.request_count == 1  # no retries stacked on the SDK


def test_breaker_opens_then_half_opens(sender_api, ai_server, settings, django_capture_on_commit_callbacks):
    settings.AI_BREAKER_FAILURES = 2
    settings.AI_BREAKER_COOLDOWN_SECONDS = 60
    ai_server.set_reply(status=500)
    proofs = []
    for sample in SAMPLES[:3]:
        escrow = invoice_escrow(sender_api.user)
        with django_capture_on_commit_callbacks(execute=True):
            proofs.append(upload_invoice(sender_api, escrow, render_pdf(sample)).json()["id"])
    errors = [Proof.objects.get(pk=p).ai_error for p in proofs]
    assert errors[2] == "circuit_open" and errors[0] != "circuit_open"
    assert ai_server.request_count == 2  # the third call never reached the server
    ai_server.set_reply(json.dumps(LOW_RISK))
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        with django_capture_on_commit_callbacks(execute=False) as queued:
            call_command("rerun_ai", "--proof", str(proofs[2]), stdout=StringIO())
        assert Proof.objects.get(pk=proofs[2]).ai_status == "QUEUED" and ai_server.request_count == 2  # queued only
        for callback in queued:
            callback()  # what the worker does with the message
    assert Proof.objects.get(pk=proofs[2]).ai_status == "DONE"
    assert ai_server.request_count == 3


def test_reading_is_scoped(sender_api, keyed_client, support_api, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    stranger = keyed_client(["sender"])
    assert_error(stranger.get(f"/api/v1/proofs/{proof_id}"), 404)
    assert_error(stranger.get(f"/api/v1/proofs/{proof_id}/file"), 404)
    assert stranger.get("/api/v1/proofs").json()["results"] == []
    listed = sender_api.get(f"/api/v1/proofs?escrow_id={escrow.pk}&status=PENDING").json()["results"]
    assert [p["id"] for p in listed] == [proof_id]
    assert_error(sender_api.get("/api/v1/proofs?status=MAYBE"), 400, "validation_error")
    download = sender_api.get(f"/api/v1/proofs/{proof_id}/file")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf" and download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content) == render_pdf(FR)
    assert support_api.get(f"/api/v1/proofs/{proof_id}").status_code == 200


def test_reprocess_ocr_command(sender_api, settings, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    Proof.objects.filter(pk=proof_id).update(ocr_status="FAILED", ocr_error="simulated", invoice_amount=None)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reprocess_ocr", "--all-failed", stdout=StringIO())
    proof = Proof.objects.get(pk=proof_id)
    assert proof.ocr_status == "DONE" and proof.invoice_amount == Decimal("2487.00")
    with pytest.raises(CommandError):
        call_command("reprocess_ocr", stdout=StringIO())


def test_sweeper_requeues_lost_and_stuck_ocr_jobs(sender_api):
    from proofs.services import proofs_sweep_ocr

    escrow = invoice_escrow(sender_api.user)
    proof_id = upload_invoice(sender_api, escrow).json()["id"]  # on_commit never ran: the message is "lost"
    assert Proof.objects.get(pk=proof_id).ocr_status == "QUEUED"
    assert proofs_sweep_ocr() == 0  # too fresh
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert proofs_sweep_ocr() == 1  # eager in tests: the job runs now
    assert Proof.objects.get(pk=proof_id).ocr_status == "DONE"
    Proof.objects.filter(pk=proof_id).update(ocr_status="RUNNING", ocr_updated_at=timezone.now())
    with time_machine.travel(timezone.now() + timedelta(minutes=20)):  # its worker died
        assert proofs_sweep_ocr() == 1
    assert Proof.objects.get(pk=proof_id).ocr_status == "DONE"


def test_ocr_job_failures_retry_then_fail_with_the_reason(sender_api):
    from django.core.files.storage import default_storage

    from proofs.services import OCR_MAX_ATTEMPTS, OcrRetryable, proof_run_ocr
    from proofs.tasks import run_ocr

    escrow = invoice_escrow(sender_api.user)
    proof_id = upload_invoice(sender_api, escrow).json()["id"]  # job not run yet
    default_storage.delete(Proof.objects.get(pk=proof_id).file.name)  # the storage lost the file
    outcomes = []
    for _ in range(OCR_MAX_ATTEMPTS + 2):  # what a worker does: run, and retry while asked to
        try:
            outcomes.append(proof_run_ocr(proof_id=proof_id))
            break
        except OcrRetryable:
            outcomes.append("retry")
    assert outcomes == ["retry", "retry", "FAILED"]
    proof = Proof.objects.get(pk=proof_id)
    assert proof.ocr_status == "FAILED" and proof.ocr_attempts == OCR_MAX_ATTEMPTS
    assert "gave up after 3 attempts" in proof.ocr_error
    assert run_ocr.max_retries == OCR_MAX_ATTEMPTS  # the task's own policy matches


def test_missing_ocr_language_pack_is_disabled_and_shown_in_health(sender_api, support_api, settings,
                                                                   django_capture_on_commit_callbacks):
    settings.OCR_LANGUAGES = "tlh"  # no Klingon pack: Tesseract cannot run for this configuration
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow, render_scan_png(FR), name="scan.png").json()["id"]
    assert Proof.objects.get(pk=proof_id).ocr_status == "DISABLED"
    health = support_api.get("/health").json()["proofs"]
    assert health["tesseract_installed"] is True and health["pending_review"] >= 1


def test_ai_daily_cap_protects_the_bill(sender_api, ai_server, settings, django_capture_on_commit_callbacks):
    import redis

    settings.AI_DAILY_CALL_LIMIT = 1
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("kobatela:cap:*"):
        client.delete(key)
    proof_ids = []
    for sample in SAMPLES[:2]:
        escrow = invoice_escrow(sender_api.user)
        with django_capture_on_commit_callbacks(execute=True):
            proof_ids.append(upload_invoice(sender_api, escrow, render_pdf(sample)).json()["id"])
    assert [Proof.objects.get(pk=p).ai_error for p in proof_ids] == ["", "daily_cap_reached"]
    assert ai_server.request_count == 1
    for key in client.scan_iter("kobatela:cap:*"):
        client.delete(key)


@pytest.mark.parametrize("decision", ["", "APPROVE", "approved", "yes", None, "reject "])
def test_a_decision_that_is_neither_approve_nor_reject_is_refused_and_changes_nothing(
        sender_api, decision, django_capture_on_commit_callbacks):
    """proof_decide once took anything but "approve" for a rejection."""
    from kobatela.core.actor import Actor
    from kobatela.core.errors import BadRequest
    from proofs.services import proof_decide
    from tests.factories import UserFactory

    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    with pytest.raises(BadRequest) as refused:
        proof_decide(actor=Actor.staff(UserFactory(is_staff=True)), proof_id=proof_id, decision=decision, note="n")
    assert refused.value.code == "invalid_decision" and refused.value.status == 400
    assert Proof.objects.get(pk=proof_id).status == "PENDING"
    assert escrow.milestones.get().status == "PENDING_REVIEW"
