"""POST /api/v1/psp/webhook: the generic PSP (Standard Webhooks), end to end.

Requests are signed with the reference ``standardwebhooks`` library; escrows
and payments are built through the real services, on PostgreSQL. Every
request goes through :func:`deliver`, which asserts that no answer is a 5xx.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from prometheus_client import REGISTRY

from escrow.models import EscrowDeposit, EscrowStatus, MilestoneStatus
from escrow.services import escrow_client_approve
from kobatela.audit.models import Alert, AuditLog
from payments.models import LedgerEntry, Payment, PaymentStatus
from tests.conftest import assert_error
from tests.factories import actor_for, fund, make_escrow
from tests.support.psp import NEXT_SECRET, OTHER_SECRET, SECRET, URL, deliver, encode, payout_event, sign_headers
from webhooks import signing
from webhooks.inbound import decode, process, psp
from webhooks.models import InboundEvent

NOW = 1_760_000_000

pytestmark = pytest.mark.usefixtures("psp_sandbox")


def funding_event(escrow, *, amount=None, currency=None, psp_ref=None) -> dict:
    return {"type": "funding.succeeded", "data": {
        "psp_ref": psp_ref or f"psp_fund_{uuid.uuid4().hex[:12]}", "escrow_id": escrow.pk,
        "amount": str(escrow.amount_total) if amount is None else amount, "currency": currency or escrow.currency}}


def metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("kobatela_webhooks_total", {"provider": "psp", "outcome": outcome}) or 0.0


def unusable_alerts():
    return Alert.objects.filter(type="webhook_event_unusable")


def snapshot(escrow) -> dict:
    escrow.refresh_from_db()
    return {
        "escrow": (escrow.status, escrow.amount_funded, escrow.amount_released),
        "ledger": LedgerEntry.objects.count(),
        "deposits": EscrowDeposit.objects.filter(escrow=escrow).count(),
        "payments": list(Payment.objects.filter(escrow=escrow).order_by("pk").values_list("status", "psp_ref")),
        "milestones": list(escrow.milestones.order_by("idx").values_list("status", flat=True)),
    }


@pytest.fixture
def draft_escrow(db):
    return make_escrow(amounts=("60.00", "40.50"))


@pytest.fixture
def sent_payments(db, django_capture_on_commit_callbacks):
    """Factory: a funded escrow approved by its client; the payouts went through the sandbox PSP (SENT)."""

    def build(amounts=("100.00",)):
        escrow = fund(make_escrow(amounts=amounts))
        with django_capture_on_commit_callbacks(execute=True):
            escrow_client_approve(actor=actor_for(escrow.client), escrow_id=escrow.pk)
        payments = list(Payment.objects.filter(escrow=escrow).order_by("milestone__idx"))
        assert [p.status for p in payments] == [PaymentStatus.SENT] * len(amounts)
        return escrow, payments

    return build


# --- signature matrix --------------------------------------------------------------------


@pytest.mark.django_db
def test_valid_signature_is_processed_and_stored_without_the_signature(draft_escrow):
    before = metric("processed")
    body = encode(funding_event(draft_escrow))
    headers = sign_headers(body)
    # No CSRF token, no API key: the signature is the only credential.
    response = Client(enforce_csrf_checks=True).post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "status": "processed"}
    event = InboundEvent.objects.get()
    assert (event.provider, event.event_id, event.event_type) == ("psp", headers["webhook-id"], "funding.succeeded")
    assert event.status == InboundEvent.Status.PROCESSED and event.attempts == 1 and event.processed_at
    stored = {name.lower() for name in event.headers}
    assert "webhook-id" in stored and "webhook-timestamp" in stored and "webhook-signature" not in stored
    assert metric("processed") == before + 1


@pytest.mark.django_db
def test_tampered_body_is_refused(draft_escrow):
    body = encode(funding_event(draft_escrow))
    headers = sign_headers(body)
    assert_error(deliver(body.replace(b"100.50", b"999.99"), headers), 401, "webhook_signature_invalid")
    assert not InboundEvent.objects.exists()
    draft_escrow.refresh_from_db()
    assert draft_escrow.amount_funded == 0


@pytest.mark.django_db
def test_wrong_secret_is_refused(draft_escrow):
    before = metric("rejected")
    assert_error(deliver(encode(funding_event(draft_escrow)), secret=OTHER_SECRET), 401, "webhook_signature_invalid")
    assert not InboundEvent.objects.exists()
    assert metric("rejected") == before + 1


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_refused(draft_escrow, missing):
    body = encode(funding_event(draft_escrow))
    headers = sign_headers(body)
    del headers[missing]
    error = assert_error(deliver(body, headers), 400, "webhook_headers_missing")
    assert error["details"] == {"missing": [missing]}
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("offset", "status"), [(301, 400), (-301, 400), (299, 200), (-299, 200), (300, 200), (-300, 200)])
def test_timestamp_tolerance_is_300_seconds_either_way(draft_escrow, offset, status):
    body = encode(funding_event(draft_escrow))
    with time_machine.travel(NOW, tick=False):
        response = deliver(body, timestamp=NOW + offset)
    if status == 400:
        assert_error(response, 400, "webhook_timestamp_invalid")
        assert not InboundEvent.objects.exists()
    else:
        assert response.status_code == 200 and response.json()["status"] == "processed"


@pytest.mark.django_db
def test_next_secret_is_accepted_during_a_rotation(draft_escrow, monkeypatch):
    monkeypatch.setenv("PSP_WEBHOOK_SECRET", OTHER_SECRET)
    monkeypatch.setenv("PSP_WEBHOOK_SECRET_NEXT", NEXT_SECRET)
    assert deliver(encode(funding_event(draft_escrow, amount="10.00")), secret=NEXT_SECRET).status_code == 200
    assert deliver(encode(funding_event(draft_escrow, amount="10.00")), secret=OTHER_SECRET).status_code == 200
    assert_error(deliver(encode(funding_event(draft_escrow)), secret=SECRET), 401, "webhook_signature_invalid")


@pytest.mark.django_db
def test_secrets_are_read_on_every_request(draft_escrow, monkeypatch):
    """Rotation without a restart: the environment is read per request."""
    body = encode(funding_event(draft_escrow, amount="10.00"))
    headers = sign_headers(body, secret=NEXT_SECRET)
    assert_error(deliver(body, headers), 401, "webhook_signature_invalid")
    monkeypatch.setenv("PSP_WEBHOOK_SECRET", NEXT_SECRET)
    assert deliver(body, headers).status_code == 200


@pytest.mark.django_db
def test_several_signatures_in_one_header(draft_escrow):
    body = encode(funding_event(draft_escrow))
    headers = sign_headers(body)
    wrong = sign_headers(body, secret=OTHER_SECRET, msg_id=headers["webhook-id"],
                         timestamp=int(headers["webhook-timestamp"]))["webhook-signature"]
    headers["webhook-signature"] = f"v2,abc {wrong} {headers['webhook-signature']}"
    assert deliver(body, headers).json() == {"received": True, "status": "processed"}


@pytest.mark.django_db
@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_secret_configured_is_503(draft_escrow, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("PSP_WEBHOOK_SECRET")
    else:
        monkeypatch.setenv("PSP_WEBHOOK_SECRET", value)
    response = Client().post(URL, data=encode(funding_event(draft_escrow)), content_type="application/json",
                             headers=sign_headers(encode(funding_event(draft_escrow))))
    assert_error(response, 503, "webhook_secret_missing")  # the one 5xx: the PSP retries, nothing is lost
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_duplicate_id_answers_duplicate_and_changes_nothing(sent_payments):
    escrow, (payment,) = sent_payments()
    body = encode(payout_event("payout.settled", payment))
    headers = sign_headers(body)
    assert deliver(body, headers).json() == {"received": True, "status": "processed"}
    before, audit_rows, duplicates = snapshot(escrow), AuditLog.objects.count(), metric("duplicate")
    event = InboundEvent.objects.get()

    # Redelivered later: a new timestamp and signature, the same webhook-id.
    again = deliver(body, msg_id=headers["webhook-id"], timestamp=int(time.time()) + 5)
    assert again.status_code == 200 and again.json() == {"duplicate": True}
    assert snapshot(escrow) == before
    assert AuditLog.objects.count() == audit_rows
    assert InboundEvent.objects.get().attempts == event.attempts == 1
    assert metric("duplicate") == duplicates + 1


@pytest.mark.django_db
def test_unknown_event_type_is_refused_and_not_stored():
    """Still a 400, on purpose (see webhooks.inbound.psp): the PSP retries it
    until a release handles the type, instead of the event being lost."""
    error = assert_error(deliver(encode({"type": "payout.exploded", "data": {}})), 400, "unknown_event_type")
    assert "payout.settled" in error["details"]["handled"]
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"{not json", b'{"type": "payout.sent", "data": ', b'{"a": NaN}',
                                  b"[" * 100_000, b"\xff\xfe\xfa"])
def test_malformed_json_is_refused(body):
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = signing.sign(secret=SECRET, msg_id="msg_1",
                                                timestamp=int(headers["webhook-timestamp"]), body=body)
    assert_error(deliver(body, headers), 400, "malformed_json")
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("event", [
    [1, 2], "payout.sent", {"data": {}}, {"type": 7, "data": {}}, {"type": None},
    {"type": "payout.sent", "data": {"payment_id": 1, "psp_ref": "a\u0000b"}},  # jsonb cannot hold NUL
])
def test_event_that_cannot_be_stored_or_has_no_type_is_refused(event):
    """Not an object, no string type (an unknown type, see above), or not storable: 400, nothing stored."""
    assert_error(deliver(encode(event)), 400, "invalid_event")
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_overlong_webhook_id_is_refused(draft_escrow):
    assert_error(deliver(encode(funding_event(draft_escrow)), msg_id="m" * 256), 400, "invalid_event")
    assert not InboundEvent.objects.exists()


def _assert_stored_unusable(response, *, code: str, unusable_before: float) -> InboundEvent:
    """Signed, of a type of the contract, unusable: 200, stored FAILED with the reason, counted, one alert."""
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "failed", "error": code}
    stored = InboundEvent.objects.get()
    assert stored.status == InboundEvent.Status.FAILED and stored.error.startswith(f"{code}: ")
    assert stored.result["error"]["code"] == code and stored.result["unusable"] is True
    assert metric("unusable") == unusable_before + 1
    alert = unusable_alerts().get()
    assert (alert.data["provider"], alert.data["event_id"], alert.data["code"]) == ("psp", stored.event_id, code)
    return stored


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [
    ("amount", "abc"), ("amount", "1.005"), ("amount", "-5.00"), ("amount", "0"), ("amount", True),
    ("amount", "1" * 17), ("amount", None), ("currency", "ZZZ"), ("currency", 12), ("escrow_id", "x"),
    ("escrow_id", 10**19), ("escrow_id", 0), ("escrow_id", 1.5), ("psp_ref", ""), ("psp_ref", {"a": 1}),
    ("psp_ref", "r" * 251),
])
def test_data_failing_its_schema_is_stored_failed_and_answered_200(draft_escrow, field, value):
    event = funding_event(draft_escrow)
    event["data"][field] = value
    before, unusable = snapshot(draft_escrow), metric("unusable")
    stored = _assert_stored_unusable(deliver(encode(event)), code="invalid_event_data", unusable_before=unusable)
    assert field in stored.result["error"]["details"]
    assert snapshot(draft_escrow) == before
    draft_escrow.refresh_from_db()
    assert draft_escrow.amount_funded == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("event", "fields"), [
    ({"type": "payout.settled", "data": {"psp_ref": "x", "amount": "1.00"}}, {"payment_id", "currency"}),
    ({"type": "payout.sent"}, {"data"}),
    ({"type": "payout.sent", "data": [1]}, {"data"}),
    ({"type": "funding.succeeded", "data": None}, {"data"}),
])
def test_known_type_with_missing_or_malformed_data_is_stored_failed(event, fields):
    unusable = metric("unusable")
    stored = _assert_stored_unusable(deliver(encode(event)), code="invalid_event_data", unusable_before=unusable)
    assert set(stored.result["error"]["details"]) == fields
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_replayed_or_reprocessed_unusable_event_fails_the_same_way_with_one_alert(draft_escrow):
    event = funding_event(draft_escrow)
    event["data"]["escrow_id"] = "x"
    body = encode(event)
    headers = sign_headers(body)
    unusable = metric("unusable")
    stored = _assert_stored_unusable(deliver(body, headers), code="invalid_event_data", unusable_before=unusable)
    first = (stored.error, stored.result)
    before = snapshot(draft_escrow)

    # The PSP (or someone holding a captured request) sends it again, signed anew.
    again = deliver(body, msg_id=headers["webhook-id"], timestamp=int(time.time()) + 5)
    assert again.json() == {"received": True, "status": "failed", "error": "invalid_event_data"}
    with pytest.raises(CommandError, match="1 of 1 event"):
        call_command("reprocess_webhooks", "--id", str(stored.pk), stdout=io.StringIO())
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (InboundEvent.Status.FAILED, 3)
    assert (stored.error, stored.result) == first
    assert unusable_alerts().count() == 1
    assert snapshot(draft_escrow) == before


# --- funding -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_funding_succeeded_funds_a_draft_escrow(draft_escrow):
    psp_ref = "psp_fund_abc"
    # A JSON number, not a string: parsed as Decimal, never a float.
    body = json.dumps({"type": "funding.succeeded", "data": {
        "psp_ref": psp_ref, "escrow_id": draft_escrow.pk, "amount": "__AMOUNT__", "currency": "usd"}})
    body = body.replace('"__AMOUNT__"', "100.50").encode()
    assert deliver(body).json() == {"received": True, "status": "processed"}

    draft_escrow.refresh_from_db()
    assert draft_escrow.status == EscrowStatus.FUNDED
    assert draft_escrow.amount_funded == Decimal("100.50")
    deposit = EscrowDeposit.objects.get(escrow=draft_escrow)
    assert (deposit.source, deposit.psp_ref, deposit.idempotency_key) == ("psp", psp_ref, f"psp:{psp_ref}")
    lines = LedgerEntry.objects.filter(movement=f"deposit:{deposit.pk}")
    assert sorted((line.account, line.amount) for line in lines) == [
        (f"escrow:{draft_escrow.pk}", Decimal("100.50")), ("psp:clearing", Decimal("-100.50"))]

    event = InboundEvent.objects.get()
    assert event.body["data"]["amount"] == "100.50"  # stored exactly, so a reprocess reads the same amount
    assert event.result == {"action": "funding.succeeded", "escrow_id": draft_escrow.pk,
                            "escrow_status": "FUNDED", "amount_funded": "100.50"}
    audit = AuditLog.objects.get(action="webhook.processed")
    assert (audit.actor, audit.entity_id) == ("system:psp_webhook", str(event.pk))
    assert AuditLog.objects.filter(action="escrow.deposit", actor="system:psp_webhook").count() == 1


@pytest.mark.django_db
def test_same_psp_ref_under_a_new_webhook_id_does_not_fund_twice():
    escrow = make_escrow(amounts=("100.00",))
    event = funding_event(escrow, amount="40.00", psp_ref="psp_fund_once")
    assert deliver(encode(event)).json()["status"] == "processed"
    before = snapshot(escrow)
    again = deliver(encode(event))  # a new webhook-id: not a duplicate for the inbox
    assert again.json() == {"received": True, "status": "processed"}
    assert snapshot(escrow) == before
    escrow.refresh_from_db()
    assert (escrow.status, escrow.amount_funded) == (EscrowStatus.DRAFT, Decimal("40.00"))
    assert InboundEvent.objects.filter(status=InboundEvent.Status.PROCESSED).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "code", "outcome"), [
    ({"currency": "EUR"}, "funding_currency_mismatch", "failed"),
    ({"escrow_id": 10**17}, "escrow_not_found", "unusable"),
    ({"amount": "500.00"}, "deposit_exceeds_remaining", "failed"),
])
def test_funding_refused_by_a_rule_is_stored_failed_and_answered_200(draft_escrow, change, code, outcome):
    """A rule's refusal (409/422) is "failed"; an escrow that does not exist makes the event unusable (an alert)."""
    before, counted = snapshot(draft_escrow), metric(outcome)
    event = funding_event(draft_escrow)
    event["data"].update(change)
    response = deliver(encode(event))
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "failed", "error": code}
    assert snapshot(draft_escrow) == before
    stored = InboundEvent.objects.get()
    assert stored.status == InboundEvent.Status.FAILED and stored.error.startswith(f"{code}:")
    assert stored.result["error"]["code"] == code and stored.processed_at is None
    assert AuditLog.objects.filter(action="webhook.failed", entity_id=str(stored.pk)).exists()
    assert metric(outcome) == counted + 1
    assert unusable_alerts().count() == (outcome == "unusable")


# --- payouts -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_payout_settled_pays_the_milestone_and_the_last_one_releases_the_escrow(sent_payments):
    escrow, (first, second) = sent_payments(amounts=("60.00", "40.00"))

    assert deliver(encode(payout_event("payout.settled", first))).json()["status"] == "processed"
    first.refresh_from_db()
    escrow.refresh_from_db()
    assert first.status == PaymentStatus.SETTLED and first.settled_at
    assert escrow.milestones.get(idx=1).status == MilestoneStatus.PAID
    assert escrow.status != EscrowStatus.RELEASED and escrow.amount_released == Decimal("60.00")

    assert deliver(encode(payout_event("payout.settled", second))).json()["status"] == "processed"
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.RELEASED and escrow.amount_released == Decimal("100.00")
    assert set(escrow.milestones.values_list("status", flat=True)) == {MilestoneStatus.PAID}
    assert LedgerEntry.objects.filter(movement__in=[f"payout:{first.pk}", f"payout:{second.pk}"]).count() == 4
    assert AuditLog.objects.filter(action="payment.settled", actor="system:psp_webhook").count() == 2


@pytest.mark.django_db
def test_amount_mismatch_is_stored_failed_and_reprocessing_still_fails(sent_payments):
    escrow, (payment,) = sent_payments()
    before = snapshot(escrow)
    response = deliver(encode(payout_event("payout.settled", payment, amount="99.99")))
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "failed", "error": "payment_amount_mismatch"}
    assert snapshot(escrow) == before
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.FAILED and event.attempts == 1

    with pytest.raises(CommandError, match="1 of 1 event"):
        call_command("reprocess_webhooks", "--all-failed", stdout=(out := io.StringIO()))
    assert "payment_amount_mismatch" in out.getvalue()
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED and event.attempts == 2
    assert snapshot(escrow) == before
    assert AuditLog.objects.filter(action="webhook.reprocess_requested", actor="system:reprocess_webhooks").count() == 1


@pytest.mark.django_db
def test_payout_sent_marks_a_pending_payment_sent():
    escrow = fund(make_escrow())
    escrow_client_approve(actor=actor_for(escrow.client), escrow_id=escrow.pk)  # payout task never runs here
    payment = Payment.objects.get(escrow=escrow)
    assert payment.status == PaymentStatus.PENDING
    response = deliver(encode(payout_event("payout.sent", payment, psp_ref="psp_po_42")))
    assert response.json() == {"received": True, "status": "processed"}
    payment.refresh_from_db()
    assert (payment.status, payment.psp_ref) == (PaymentStatus.SENT, "psp_po_42")


@pytest.mark.django_db
def test_payout_failed_makes_a_sent_payment_failed_with_its_code(sent_payments):
    """#15: FAILED with the PSP's failure_code and an alert; retried only by an explicit execute."""
    _, (payment,) = sent_payments()
    response = deliver(encode(payout_event("payout.failed", payment, reason="account closed",
                                           failure_code="account_closed")))
    assert response.json() == {"received": True, "status": "processed"}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and payment.last_error == "account closed"
    assert payment.failure_code == "account_closed" and payment.next_attempt_at is None
    assert Alert.objects.filter(type="payout_failed").count() == 1
    assert InboundEvent.objects.get().result == {"action": "payout.failed", "payment_id": payment.pk,
                                                 "payment_status": "FAILED"}


@pytest.mark.django_db
def test_unknown_payment_is_stored_failed_with_an_alert():
    unusable = metric("unusable")
    response = deliver(encode({"type": "payout.sent", "data": {"payment_id": 10**17, "psp_ref": "x"}}))
    _assert_stored_unusable(response, code="payment_not_found", unusable_before=unusable)


@pytest.mark.django_db
def test_refund_arriving_before_settlement_fails_then_reprocesses_once_settled(sent_payments):
    """Out of order: the PSP's refund is delivered before its settlement. The
    refund cannot apply to a SENT payout and is stored FAILED; once the
    settlement is in, support reprocesses it and it goes through."""
    escrow, (payment,) = sent_payments()
    refund = deliver(encode(payout_event("payout.refunded", payment)))
    assert refund.json() == {"received": True, "status": "failed", "error": "payment_is_sent"}
    event = InboundEvent.objects.get(event_type="payout.refunded")

    assert deliver(encode(payout_event("payout.settled", payment))).json()["status"] == "processed"
    escrow.refresh_from_db()
    assert escrow.status == EscrowStatus.RELEASED

    call_command("reprocess_webhooks", "--id", str(event.pk), stdout=(out := io.StringIO()))
    assert f"#{event.pk}" in out.getvalue() and "PROCESSED" in out.getvalue()
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (InboundEvent.Status.PROCESSED, 2, "")
    payment.refresh_from_db()
    escrow.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert escrow.status == EscrowStatus.RELEASABLE and escrow.amount_released == 0
    assert escrow.milestones.get().status == MilestoneStatus.APPROVED
    assert LedgerEntry.objects.filter(movement=f"payout_refund:{payment.pk}").count() == 2

    # Reprocessing a processed event changes nothing.
    call_command("reprocess_webhooks", "--id", str(event.pk), stdout=io.StringIO())
    event.refresh_from_db()
    assert event.attempts == 2


@pytest.mark.django_db
def test_event_left_unprocessed_by_a_crash_is_processed_on_redelivery(draft_escrow):
    """The process died after storing the event: the PSP got a 5xx and delivers again."""
    body = encode(funding_event(draft_escrow))
    headers = sign_headers(body)
    envelope = psp.psp_envelope(event_id=headers["webhook-id"], body=decode.decode_body(body))
    stored, created = process.inbound_event_store(envelope=envelope, headers=headers)
    assert created and stored.status == InboundEvent.Status.RECEIVED

    assert deliver(body, msg_id=headers["webhook-id"]).json() == {"received": True, "status": "processed"}
    stored.refresh_from_db()
    assert stored.status == InboundEvent.Status.PROCESSED and stored.attempts == 1
    draft_escrow.refresh_from_db()
    assert draft_escrow.status == EscrowStatus.FUNDED


@pytest.mark.django_db
def test_failed_event_redelivered_with_its_id_is_processed_again(draft_escrow):
    event = funding_event(draft_escrow, currency="EUR")
    body = encode(event)
    headers = sign_headers(body)
    assert deliver(body, headers).json()["status"] == "failed"
    assert deliver(body, msg_id=headers["webhook-id"]).json()["status"] == "failed"
    assert InboundEvent.objects.get().attempts == 2


@pytest.mark.django_db
def test_reprocess_command_needs_a_target_and_reports_unknown_ids():
    with pytest.raises(CommandError, match="--all-failed"):
        call_command("reprocess_webhooks")
    call_command("reprocess_webhooks", "--all-failed", stdout=(out := io.StringIO()))
    assert "No failed events" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("reprocess_webhooks", "--id", "999999", stdout=(out := io.StringIO()))
    assert "inbound_event_not_found" in out.getvalue()


# --- admin ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_client_(db):
    user = get_user_model().objects.create_superuser(email="ops@example.test", password="x" * 20)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_is_read_only_and_reprocesses_through_the_service(admin_client_, sent_payments):
    escrow, (payment,) = sent_payments()
    deliver(encode(payout_event("payout.refunded", payment)))
    deliver(encode(payout_event("payout.settled", payment)))
    event = InboundEvent.objects.get(event_type="payout.refunded")
    assert event.status == InboundEvent.Status.FAILED

    changelist = reverse("admin:webhooks_inboundevent_changelist")
    page = admin_client_.get(changelist, {"status__exact": "FAILED", "q": event.event_id})
    assert page.status_code == 200 and event.event_id.encode() in page.content
    assert admin_client_.get(reverse("admin:webhooks_inboundevent_add")).status_code == 403
    change = reverse("admin:webhooks_inboundevent_change", args=[event.pk])
    assert admin_client_.get(change).status_code == 200
    admin_client_.post(change, {"status": "PROCESSED"})
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED  # nothing edited by hand
    assert admin_client_.post(reverse("admin:webhooks_inboundevent_delete", args=[event.pk])).status_code == 403

    response = admin_client_.post(changelist, {"action": "reprocess", "_selected_action": [event.pk]}, follow=True)
    assert response.status_code == 200 and b"1 event(s) processed" in response.content
    event.refresh_from_db()
    payment.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED and payment.status == PaymentStatus.REFUNDED
    staff = AuditLog.objects.get(action="webhook.reprocess_requested")
    assert staff.actor.startswith("staff:")


def test_every_action_has_a_schema_and_a_handler():
    """Two maps name the actions — how to read each (schemas, used while parsing)
    and what to do (process): an action in one only would fail at run time."""
    from webhooks.inbound.schemas import ACTIONS

    assert process.HANDLERS.keys() == ACTIONS.keys() == {
        "funding.succeeded", "payout.sent", "payout.settled", "payout.failed", "payout.refunded",
        "payout.returned", "refund.settled", "refund.failed", "account.verified"}
