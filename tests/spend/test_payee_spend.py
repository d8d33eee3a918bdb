"""Allowed payees of an escrow and ``POST /spend``."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError
from django.utils import timezone

from escrow import services as escrow_services
from kobatela.audit.models import AuditLog
from kobatela.core.errors import Conflict
from payments.models import Payment
from payments.psp import sandbox
from payments.reconcile import reconcile
from spend import services
from spend.models import AllowedPayee, PayeeSpend
from tests.conftest import assert_error
from tests.factories import fund, make_escrow
from tests.spend.builders import allow_payee

pytestmark = pytest.mark.django_db

URL = "/api/v1/spend"
_keys = iter(range(10**6))


def spend(api, escrow, amount="10.00", payee_ref="acct_payee_1", key=None, **extra):
    return api.post(URL, {"escrow_id": escrow.pk, "payee_ref": payee_ref, "amount": amount, **extra}, format="json",
                    HTTP_IDEMPOTENCY_KEY=key or f"s-{next(_keys)}")


def no_payout_written(escrow):
    assert not Payment.objects.filter(escrow=escrow).exists()
    assert not PayeeSpend.objects.exists()


# --- allowing payees ----------------------------------------------------------------------------


def test_allow_a_payee(admin_api, support_api, sender_api):
    escrow = make_escrow(client=sender_api.user)
    body = {"escrow_id": escrow.pk, "payee_ref": "acct_1", "label": "Builder", "daily_limit": "50.00",
            "total_limit": "500.00"}
    response = admin_api.post("/api/v1/spend/allowed", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {**response.json(), "escrow_id": escrow.pk, "payee_ref": "acct_1", "daily_limit": "50.00",
                               "total_limit": "500.00", "spent_today": "0.00", "spent_total": "0.00", "spent_on": None}
    assert_error(support_api.post("/api/v1/spend/allowed", body, format="json"), 409, "payee_already_allowed")
    assert_error(support_api.post("/api/v1/spend/allowed", {**body, "escrow_id": 987654321}, format="json"), 404,
                 "escrow_not_found")
    assert_error(sender_api.post("/api/v1/spend/allowed", {**body, "payee_ref": "acct_2"}, format="json"), 403)
    for patch in [{"daily_limit": "0"}, {"total_limit": "-5"}, {"total_limit": "1.001"}, {"payee_ref": ""},
                  {"label": None}, {"escrow_id": "x"}]:
        assert_error(admin_api.post("/api/v1/spend/allowed", {**body, "payee_ref": "acct_3", **patch}, format="json"),
                     400, "validation_error")
    assert AllowedPayee.objects.count() == 1
    assert AuditLog.objects.filter(action="payee.allowed").count() == 1


def test_allow_calls_only_a_repeated_payee_ref_already_allowed():
    escrow = make_escrow()
    allow_payee(escrow, "acct_1")
    with pytest.raises(Conflict) as refused:
        allow_payee(escrow, "acct_1")
    assert refused.value.code == "payee_already_allowed"
    with pytest.raises(IntegrityError):  # the database refuses a zero limit; it is no repeat
        allow_payee(escrow, "acct_2", daily_limit="0")
    assert list(AllowedPayee.objects.values_list("payee_ref", flat=True)) == ["acct_1"]


# --- spending -----------------------------------------------------------------------------------


def test_spend_creates_and_sends_a_payout(sender_api, django_capture_on_commit_callbacks):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("300.00",)))
    allow_payee(escrow, daily_limit="100.00", total_limit="250.00")
    with django_capture_on_commit_callbacks(execute=True):  # the payout leaves after commit
        response = spend(sender_api, escrow, "40.00", note="cement")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] in ("PENDING", "SENT")  # here the payout task runs when the capture ends
    assert body == {**body, "amount": "40.00", "currency": "USD", "payee_ref": "acct_payee_1",
                    "escrow_id": escrow.pk, "note": "cement", "spent_today": "40.00", "spent_total": "40.00",
                    "daily_limit": "100.00", "total_limit": "250.00"}
    payment = Payment.objects.get(pk=body["payment_id"])
    assert payment.status == "SENT"
    assert (payment.owner_id, payment.escrow_id, payment.milestone_id) == (escrow.client_id, escrow.pk, None)
    assert payment.destination == "acct_payee_1" and payment.amount == Decimal("40.00")
    assert len(sandbox.recorded_payouts()) == 1
    created = AuditLog.objects.get(action="payment.created", entity_id=str(payment.pk))
    assert created.data["reason"] == "payee_spend"
    assert AuditLog.objects.filter(action="payee.spend").count() == 1
    # The PSP settles it: the escrow releases the money and the books agree.
    escrow_services.escrow_settle_payout(actor="system:test", payment_id=payment.pk, psp_ref=payment.psp_ref)
    escrow.refresh_from_db()
    assert escrow.amount_released == Decimal("40.00") and escrow.status == "FUNDED"
    assert reconcile() == []


def test_admin_spends_for_any_escrow_a_sender_only_its_own(sender_api, admin_api):
    theirs = fund(make_escrow())
    allow_payee(theirs)
    assert_error(spend(sender_api, theirs), 404, "escrow_not_found")
    assert_error(spend(sender_api, theirs, escrow_id=987654321), 404, "escrow_not_found")
    no_payout_written(theirs)
    assert spend(admin_api, theirs).status_code == 200


def test_a_payee_not_allowed_for_this_escrow_is_403(sender_api):
    escrow = fund(make_escrow(client=sender_api.user))
    other = fund(make_escrow(client=sender_api.user))
    allow_payee(other, "acct_elsewhere")
    assert_error(spend(sender_api, escrow, payee_ref="acct_elsewhere"), 403, "payee_not_allowed")
    assert_error(spend(sender_api, escrow, payee_ref="acct_unknown"), 403, "payee_not_allowed")
    no_payout_written(escrow)


def test_daily_limit_resets_on_the_next_utc_day(sender_api):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("1000.00",)))
    payee = allow_payee(escrow, daily_limit="50.00")
    start = timezone.now().replace(hour=12)
    with time_machine.travel(start, tick=False):
        assert spend(sender_api, escrow, "30.00").status_code == 200
        error = assert_error(spend(sender_api, escrow, "20.01"), 409, "daily_limit_exceeded")
        assert error["details"] == {"daily_limit": "50.00", "spent_today": "30.00", "amount": "20.01"}
        assert spend(sender_api, escrow, "20.00").status_code == 200
    with time_machine.travel(start + timedelta(days=1), tick=False):
        assert spend(sender_api, escrow, "50.00").json()["spent_today"] == "50.00"
    payee.refresh_from_db()
    assert payee.spent_total == Decimal("100.00") and payee.spent_on == (start + timedelta(days=1)).date()
    assert Payment.objects.filter(escrow=escrow).count() == 3
    assert reconcile() == []


def test_total_limit(sender_api):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("1000.00",)))
    allow_payee(escrow, total_limit="60.00")
    assert spend(sender_api, escrow, "60.00").status_code == 200
    assert_error(spend(sender_api, escrow, "0.01"), 409, "total_limit_exceeded")
    assert Payment.objects.filter(escrow=escrow).count() == 1


def test_the_escrow_balance_counts_payouts_not_yet_settled(sender_api):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("100.00",)))
    allow_payee(escrow)
    assert spend(sender_api, escrow, "60.00").status_code == 200  # SENT, not settled: still committed
    error = assert_error(spend(sender_api, escrow, "40.01"), 409, "insufficient_escrow_funds")
    assert error["details"] == {"available": "40.00", "amount": "40.01"}
    assert spend(sender_api, escrow, "40.00").status_code == 200
    assert_error(spend(sender_api, escrow, "0.01"), 409, "insufficient_escrow_funds")
    assert Payment.objects.filter(escrow=escrow).count() == 2
    assert reconcile() == []


def test_an_escrow_not_funded_cannot_be_spent(sender_api):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("100.00",)), amount=Decimal("50.00"))
    allow_payee(escrow)
    assert_error(spend(sender_api, escrow, "10.00"), 409, "escrow_is_draft")
    no_payout_written(escrow)


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1.999"}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"payee_ref": ""}, "payee_ref"),
        ({"escrow_id": 10**30}, "escrow_id"),
        ({"note": "x" * 2001}, "note"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(sender_api, patch, field):
    escrow = fund(make_escrow(client=sender_api.user))
    allow_payee(escrow)
    body = {"escrow_id": escrow.pk, "payee_ref": "acct_payee_1", "amount": "10.00", **patch}
    error = assert_error(sender_api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="bad"), 400, "validation_error")
    assert field in (error["details"] or {}), error
    no_payout_written(escrow)


def test_junk_json_missing_key_and_scopes(sender_api, support_api):
    escrow = fund(make_escrow(client=sender_api.user))
    allow_payee(escrow)
    assert_error(sender_api.post(URL, "[1,", content_type="application/json", HTTP_IDEMPOTENCY_KEY="j"), 400)
    assert_error(sender_api.post(URL, {"escrow_id": escrow.pk, "payee_ref": "acct_payee_1", "amount": "1.00"},
                                 format="json"), 400, "idempotency_key_required")
    assert_error(spend(support_api, escrow), 403)
    no_payout_written(escrow)


def test_replay_pays_once(sender_api, django_capture_on_commit_callbacks):
    escrow = fund(make_escrow(client=sender_api.user, amounts=("100.00",)))
    allow_payee(escrow)
    with django_capture_on_commit_callbacks(execute=True):
        first = spend(sender_api, escrow, "25.00", key="pay-once")
        again = spend(sender_api, escrow, "25.00", key="pay-once")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert_error(spend(sender_api, escrow, "26.00", key="pay-once"), 422, "idempotency_key_reused")
    assert Payment.objects.filter(escrow=escrow).count() == 1 and len(sandbox.recorded_payouts()) == 1


def test_the_database_key_stops_a_second_payout_even_without_the_replay_store():
    escrow = fund(make_escrow(amounts=("100.00",)))
    allow_payee(escrow)
    args = dict(actor="system:test", escrow_id=escrow.pk, payee_ref="acct_payee_1", idempotency_key="k")
    first = services.payee_spend(amount=Decimal("10.00"), **args)
    assert services.payee_spend(amount=Decimal("10.00"), **args).pk == first.pk
    with pytest.raises(Conflict) as refused:
        services.payee_spend(amount=Decimal("12.00"), **args)
    assert refused.value.code == "spend_key_reused"
    assert Payment.objects.filter(escrow=escrow).count() == 1
    assert AllowedPayee.objects.get().spent_total == Decimal("10.00")
