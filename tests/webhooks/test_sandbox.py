"""/api/v1/sandbox/…: the sandbox PSP's signed webhooks on demand, and the test clock."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from escrow.models import EscrowAgreement, EscrowStatus
from escrow.services import escrow_client_approve
from kobatela.core import clock
from kobatela.core.models import ClockOffset
from payments.models import Payment, PaymentStatus
from payments.psp import sandbox as sandbox_psp
from spend.models import MandateStatus
from tests.conftest import assert_error
from tests.factories import actor_for, fund, make_escrow
from tests.spend.builders import make_mandate
from webhooks.models import InboundEvent

SECRET = "whsec_" + base64.b64encode(b"sandbox-helper-secret-32-bytes!!").decode()


@pytest.fixture(autouse=True)
def _env(monkeypatch, settings):
    settings.PSP_PROVIDER = "sandbox"
    monkeypatch.setenv("PSP_WEBHOOK_SECRET", SECRET)
    sandbox_psp.reset()
    yield
    sandbox_psp.reset()


def _sent_payment(client_user, django_capture_on_commit_callbacks) -> Payment:
    escrow = fund(make_escrow(client=client_user))
    with django_capture_on_commit_callbacks(execute=True):
        escrow_client_approve(actor=actor_for(escrow.client), escrow_id=escrow.pk)
    payment = Payment.objects.get(escrow=escrow)
    assert payment.status == PaymentStatus.SENT
    return payment


@pytest.mark.django_db
def test_fund_sends_a_signed_funding_event_through_the_inbound_path(sender_api):
    escrow = make_escrow(client=sender_api.user, amounts=("60.00", "40.00"))
    response = sender_api.post(f"/api/v1/sandbox/escrows/{escrow.pk}/fund")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "processed" and response.json()["type"] == "funding.succeeded"
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.FUNDED and escrow.amount_funded == escrow.amount_total
    event = InboundEvent.objects.get()
    assert event.event_id == response.json()["webhook_id"] and event.status == InboundEvent.Status.PROCESSED
    assert_error(sender_api.post(f"/api/v1/sandbox/escrows/{escrow.pk}/fund"), 409, "escrow_not_fundable")


@pytest.mark.django_db
def test_settle_and_fail_answer_404_for_another_tenant_and_409_unless_sent(sender_api, keyed_client,
                                                                            django_capture_on_commit_callbacks):
    payment = _sent_payment(sender_api.user, django_capture_on_commit_callbacks)
    stranger = keyed_client(["sender"])
    assert_error(stranger.post(f"/api/v1/sandbox/payments/{payment.pk}/settle"), 404, "payment_not_found")
    response = sender_api.post(f"/api/v1/sandbox/payments/{payment.pk}/settle")
    assert response.status_code == 202 and response.json()["status"] == "processed"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SETTLED
    assert EscrowAgreement.objects.get(pk=payment.escrow_id).status == EscrowStatus.RELEASED
    assert_error(sender_api.post(f"/api/v1/sandbox/payments/{payment.pk}/fail"), 409, "payment_not_sent")


@pytest.mark.django_db
def test_fail_reports_the_payout_failed(sender_api, django_capture_on_commit_callbacks):
    payment = _sent_payment(sender_api.user, django_capture_on_commit_callbacks)
    response = sender_api.post(f"/api/v1/sandbox/payments/{payment.pk}/fail", {"failure_code": "account_closed"},
                               format="json")
    assert response.status_code == 202, response.content
    payment.refresh_from_db()
    assert payment.status != PaymentStatus.SENT


@pytest.mark.django_db
def test_clock_advance_moves_every_rule_and_runs_the_due_jobs(admin_api, sender_api):
    escrow = fund(make_escrow(client=sender_api.user, deadline_in=timedelta(hours=5)))
    mandate = make_mandate(sender=sender_api.user)
    assert_error(sender_api.post("/api/v1/sandbox/clock/advance", {"hours": 1}, format="json"), 403)
    before = timezone.now()
    response = admin_api.post("/api/v1/sandbox/clock/advance", {"hours": 24 * 400}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["offset_hours"] == 24 * 400
    assert set(body["jobs"]) >= {"escrow_deadlines", "mandate_expiry", "payout_sweep"}
    assert clock.now() - before >= timedelta(hours=24 * 400)
    escrow.refresh_from_db()
    mandate.refresh_from_db()
    assert escrow.deadline_handled_at is not None
    assert mandate.status == MandateStatus.EXPIRED
    assert ClockOffset.objects.get().seconds == 24 * 400 * 3600


@pytest.mark.django_db
def test_clock_and_helpers_are_404_outside_the_sandbox(settings, admin_api, anon_api):
    settings.PSP_PROVIDER = "stripe"
    for path in ("/api/v1/sandbox/clock/advance", "/api/v1/sandbox/escrows/1/fund",
                 "/api/v1/sandbox/payments/1/settle", "/api/v1/sandbox/payments/1/fail"):
        assert_error(admin_api.post(path, {"hours": 1}, format="json"), 404)
        assert_error(anon_api.post(path), 404)
    assert clock.offset() == timedelta(0)
    ClockOffset.objects.create(pk=ClockOffset.SINGLETON, seconds=3600)
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=5)  # the row is never read outside the sandbox
