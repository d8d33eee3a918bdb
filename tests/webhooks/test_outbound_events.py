"""Events (the transactional outbox): which services write them, what they carry, the events API."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from escrow import services as escrow_services
from escrow.deadlines import escrow_check_deadline
from escrow.refunds import refund_settle
from escrow.selectors import escrow_lock
from kobatela.events import services as events
from kobatela.events.models import Event
from payments import services as payment_services
from payments.models import Payment
from payments.psp import sandbox
from proofs.models import Proof
from tests.conftest import assert_error
from tests.factories import actor_for, fund, make_escrow
from tests.proofs.invoice_samples import SAMPLES, render_pdf
from tests.proofs.photo_samples import geotagged_jpeg
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

SITE = (Decimal("-4.325000"), Decimal("15.322200"))
INVOICE = next(s for s in SAMPLES if s.name == "fr_classic_eur")
REQUIREMENTS = {"expected_amount": "2487.00", "currency": "EUR", "iban_last4": "0189"}
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,4})?\b")
FLAGGED = {"risk_level": "high", "score": 0.91, "flags": ["amount_mismatch"], "explanation": "Totals disagree."}


def upload(api, escrow, content, *, kind="PHOTO", name="photo.jpg"):
    return api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": kind,
                                       "file": SimpleUploadedFile(name, content)}, format="multipart")


def photo_escrow(client):
    return fund(make_escrow(client=client, proof_type="PHOTO",
                            geofence={"lat": SITE[0], "lng": SITE[1], "radius_m": Decimal("100")}))


def invoice_escrow(client):
    return fund(make_escrow(client=client, amounts=("2487.00",), currency="EUR", proof_type="INVOICE",
                            proof_requirements=REQUIREMENTS))


def upload_invoice(api, escrow):
    return upload(api, escrow, render_pdf(INVOICE), kind="INVOICE", name="invoice.pdf")



@pytest.fixture(autouse=True)
def clean_sandbox():
    sandbox.reset()
    yield
    sandbox.reset()


def types_for(user) -> list[str]:
    return list(Event.objects.filter(account=user).order_by("id").values_list("type", flat=True))


# --- where events come from --------------------------------------------------------------------


def test_photo_lifecycle_emits_escrow_milestone_proof_and_payment_events(sender_api, django_capture_on_commit_callbacks):
    escrow = photo_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):  # the payout is sent after commit
        proof = upload(sender_api, escrow, geotagged_jpeg(*SITE, datetime.now(dt_timezone.utc)))
    assert proof.status_code == 201 and proof.json()["status"] == "APPROVED"
    payment = Payment.objects.get(escrow=escrow)
    escrow_services.escrow_settle_payout(actor="system:test", payment_id=payment.pk, psp_ref=payment.psp_ref,
                                    amount=payment.amount, currency=payment.currency)
    assert types_for(sender_api.user) == [
        "escrow.created", "escrow.funded",
        "proof.submitted", "escrow.releasable", "milestone.approved", "proof.approved",
        "payment.sent",
        "payment.settled", "milestone.paid", "escrow.released",
    ]
    released = Event.objects.get(type="escrow.released")
    read = sender_api.get(f"/api/v1/escrows/{escrow.pk}").json()
    read.pop("allowed_actions")  # what the reader may do: the event has no reader
    assert released.data == read  # the API's own EscrowRead
    paid = Event.objects.get(type="milestone.paid")
    milestone = escrow.milestones.get()
    assert paid.context == {"milestone_id": milestone.pk, "milestone_idx": 1}
    assert paid.object_type == "escrow" and paid.object_id == str(escrow.pk)
    settled = Event.objects.get(type="payment.settled")
    assert settled.object_type == "payment" and settled.data["status"] == "SETTLED"
    assert settled.data == sender_api.get(f"/api/v1/payments/{payment.pk}").json()
    submitted = Event.objects.get(type="proof.submitted")
    assert submitted.data["status"] == "PENDING" and submitted.data["id"] == proof.json()["id"]


def test_rejection_failure_refund_and_delivery_events(sender_api):
    actor = actor_for(sender_api.user)
    escrow = fund(make_escrow(client=sender_api.user, amounts=("60.00", "40.00")))
    escrow_services.escrow_mark_delivered(actor=actor, escrow_id=escrow.pk)
    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        first = locked.milestones.get(idx=1)
        escrow_services.milestone_mark_pending_review(actor=actor, escrow=locked, milestone=first)
    escrow_services.escrow_client_reject(actor=actor, escrow_id=escrow.pk, reason="not what was ordered")
    escrow_services.escrow_client_approve(actor=actor, escrow_id=escrow.pk)
    payment = Payment.objects.filter(escrow=escrow).order_by("pk").first()
    payment_services.payment_fail(actor="system:test", payment_id=payment.pk, reason="account closed")
    assert types_for(sender_api.user) == [
        "escrow.created", "escrow.funded", "escrow.releasable", "milestone.rejected",
        "milestone.approved", "milestone.approved", "payment.failed",
    ]
    rejected = Event.objects.get(type="milestone.rejected")
    assert rejected.context == {"milestone_id": first.pk, "milestone_idx": 1}
    assert Event.objects.get(type="payment.failed").data["last_error"] == "account closed"


def test_refund_on_deadline_emits_refund_created_then_escrow_refunded(sender_api, settings):
    """The deadline's refund goes through the refund service: refund.created now,
    escrow.refunded once the PSP settles it."""
    settings.ESCROW_DEADLINE_POLICY = "refund"
    escrow = fund(make_escrow(client=sender_api.user))
    outcome = escrow_check_deadline(actor="system:test", escrow_id=escrow.pk,
                                    now=escrow.deadline_at + timedelta(seconds=1))
    created = Event.objects.get(type="refund.created")
    assert (created.data["id"], created.data["amount"], created.data["status"]) == (outcome.refund_id, "100.00",
                                                                                    "PENDING")
    assert not Event.objects.filter(type="escrow.refunded").exists()
    refund_settle(actor="system:test", refund_id=outcome.refund_id)
    refunded = Event.objects.get(type="escrow.refunded")
    assert refunded.data["status"] == "REFUNDED" and refunded.data["amount_refunded"] == "100.00"


def test_invoice_proof_flagged_by_the_ai_advisor_then_rejected(sender_api, support_api, ai_server,
                                                               django_capture_on_commit_callbacks):
    ai_server.set_reply(json.dumps(FLAGGED))
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        proof_id = upload_invoice(sender_api, escrow).json()["id"]
    flagged = Event.objects.get(type="proof.flagged")
    assert flagged.data["ai"]["risk_level"] == "high" and flagged.data["ai"]["flags"] == ["amount_mismatch"]
    # The same masking as the API: no OCR text, no full IBAN anywhere in the event.
    raw = json.dumps(flagged.data)
    full_iban = IBAN_RE.search(Proof.objects.get().ocr_text).group(0)
    assert "ocr_text" not in raw and full_iban not in raw and full_iban.replace(" ", "") not in raw
    assert flagged.data["invoice"]["iban_last4"] == "0189"
    assert flagged.data == sender_api.get(f"/api/v1/proofs/{proof_id}").json()

    response = support_api.post(f"/api/v1/proofs/{proof_id}/decision", {"decision": "reject", "note": "totals differ"},
                                format="json")
    assert response.status_code == 200, response.content
    assert types_for(sender_api.user) == [
        "escrow.created", "escrow.funded", "proof.submitted", "escrow.releasable", "proof.flagged",
        "milestone.rejected", "proof.rejected",
    ]
    assert Event.objects.get(type="proof.rejected").data["decision_note"] == "totals differ"


def test_low_risk_ai_result_is_not_flagged(sender_api, ai_server, django_capture_on_commit_callbacks):
    escrow = invoice_escrow(sender_api.user)
    with django_capture_on_commit_callbacks(execute=True):
        upload_invoice(sender_api, escrow)
    assert Proof.objects.get().ai_status == "DONE"
    assert not Event.objects.filter(type="proof.flagged").exists()


# --- the outbox guarantee ------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_an_event_is_written_in_the_transaction_of_its_change(sender_api, monkeypatch):
    escrow = make_escrow(client=sender_api.user)
    before = Event.objects.count()
    with pytest.raises(Boom):
        with transaction.atomic():
            events.emit(account_id=escrow.client_id, type="escrow.releasable", resource=escrow)
            raise Boom
    assert Event.objects.count() == before

    # Through a real service: it fails after its emit() line, so no escrow and no event.
    def broken_audit(*args, **kwargs):
        raise Boom

    monkeypatch.setattr(escrow_services.audit, "record", broken_audit)
    with pytest.raises(Boom):
        make_escrow(client=sender_api.user)
    assert Event.objects.count() == before and WebhookDelivery.objects.count() == 0


def test_emit_refuses_unknown_types_and_resources(sender_api):
    escrow = make_escrow(client=sender_api.user)
    with pytest.raises(ValueError, match="Unknown event type"):
        events.emit(account_id=escrow.client_id, type="escrow.teleported", resource=escrow)
    with pytest.raises(ValueError, match="No event serializer"):
        events.emit(account_id=escrow.client_id, type="escrow.created", resource=sender_api.api_key)


# --- GET /events -----------------------------------------------------------------------------------


def test_events_api_lists_own_events_newest_first_with_filters(sender_api, keyed_client, support_api):
    with time_machine.travel(datetime(2026, 5, 1, 8, 0, tzinfo=dt_timezone.utc), tick=False):
        first = make_escrow(client=sender_api.user)
    with time_machine.travel(datetime(2026, 5, 2, 8, 0, tzinfo=dt_timezone.utc), tick=False):
        fund(first)
    other = keyed_client(["sender"])
    theirs = make_escrow(client=other.user)

    body = sender_api.get("/api/v1/events").json()
    assert [e["type"] for e in body["results"]] == ["escrow.funded", "escrow.created"]
    assert set(body["results"][0]) == {"id", "type", "created_at", "account_id", "object_type", "object_id", "data",
                                       "context"}
    assert body["results"][0]["created_at"] == "2026-05-02T08:00:00Z"
    assert body["results"][0]["data"]["amount_funded"] == "100.00"

    only_created = sender_api.get("/api/v1/events", {"type": "escrow.created"}).json()["results"]
    assert [e["object_id"] for e in only_created] == [str(first.pk)]
    after = sender_api.get("/api/v1/events", {"created_after": "2026-05-01T12:00:00Z"}).json()["results"]
    assert [e["type"] for e in after] == ["escrow.funded"]
    assert_error(sender_api.get("/api/v1/events", {"type": "escrow.teleported"}), 400, "validation_error")
    assert_error(sender_api.get("/api/v1/events", {"created_after": "yesterday"}), 400, "validation_error")

    page = sender_api.get("/api/v1/events", {"limit": 1}).json()
    assert len(page["results"]) == 1 and page["next"]
    assert [e["type"] for e in sender_api.get(page["next"]).json()["results"]] == ["escrow.created"]

    theirs_event = Event.objects.get(account=other.user)
    assert_error(sender_api.get(f"/api/v1/events/{theirs_event.pk}"), 404)
    assert sender_api.get(f"/api/v1/events/{theirs_event.pk + 10**6}").status_code == 404
    assert other.get(f"/api/v1/events/{theirs_event.pk}").json()["object_id"] == str(theirs.pk)
    seen_by_support = {e["account_id"] for e in support_api.get("/api/v1/events").json()["results"]}
    assert {sender_api.user.pk, other.user.pk} <= seen_by_support


def test_events_api_needs_a_key_with_a_reading_scope(anon_api, keyed_client):
    assert_error(anon_api.get("/api/v1/events"), 401)
    assert_error(keyed_client(["gov"]).get("/api/v1/events"), 403)


def test_money_stays_a_decimal_string_in_event_data(sender_api):
    make_escrow(client=sender_api.user, amounts=("12.50", "0.05"))
    data = Event.objects.get().data
    assert data["amount_total"] == "12.55" and [m["amount"] for m in data["milestones"]] == ["12.50", "0.05"]
    assert Decimal(data["amount_total"]) == Decimal("12.55")
