from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from kobatela.audit.models import AuditLog
from kobatela.core.errors import ValidationFailed
from payments.ledger import PSP_CLEARING, balance, mandate_account
from payments.models import LedgerEntry
from payments.reconcile import reconcile
from spend import services
from spend.models import MandateStatus, UsageMandate
from spend.tasks import expire_mandates
from tests.conftest import assert_error
from tests.escrow.test_lifecycle import assert_moves_or_is_refused, every_pair
from tests.factories import UserFactory
from tests.spend.builders import make_category, make_mandate, make_merchant

pytestmark = pytest.mark.django_db

URL = "/api/v1/mandates"


def mandate_payload(beneficiary, **overrides):
    payload = {
        "beneficiary_id": beneficiary.pk,
        "total_amount": "250.00",
        "currency": "USD",
        "sector": "education",
        "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
    }
    payload.update(overrides)
    return payload


def test_create_funds_the_budget_and_reads_back(sender_api):
    beneficiary = UserFactory()
    category, merchant = make_category(), make_merchant()
    response = sender_api.post(URL, mandate_payload(beneficiary, allowed_category_ids=[category.pk],
                                                    allowed_merchant_ids=[merchant.pk]), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "ACTIVE" and body["remaining_amount"] == "250.00" and body["total_amount"] == "250.00"
    assert body["sender_id"] == sender_api.user.pk and body["beneficiary_id"] == beneficiary.pk
    assert body["sector"] == "education" and body["currency"] == "USD"
    assert body["allowed_category_ids"] == [category.pk] and body["allowed_merchant_ids"] == [merchant.pk]
    assert balance(mandate_account(body["id"])) == Decimal("250.00")
    funding = LedgerEntry.objects.filter(movement=f"mandate_funding:{body['id']}")
    assert {(e.account, e.amount, e.kind) for e in funding} == {
        (PSP_CLEARING, Decimal("-250.00"), "mandate_funding"), (mandate_account(body["id"]), Decimal("250.00"), "mandate_funding")}
    assert AuditLog.objects.filter(action="mandate.created", entity_id=str(body["id"])).exists()
    assert sender_api.get(f"{URL}/{body['id']}").json() == body
    assert reconcile() == []


def test_list_and_read_are_scoped(sender_api, support_api, admin_api):
    mine = make_mandate(sender=sender_api.user)
    other = make_mandate()
    ids = [m["id"] for m in sender_api.get(URL).json()["results"]]
    assert ids == [mine.pk]
    assert_error(sender_api.get(f"{URL}/{other.pk}"), 404)
    assert_error(sender_api.get(f"{URL}/99999999999"), 404)
    for staff in (support_api, admin_api):
        assert {mine.pk, other.pk} <= {m["id"] for m in staff.get(URL).json()["results"]}
        assert staff.get(f"{URL}/{other.pk}").status_code == 200
    assert [m["id"] for m in sender_api.get(f"{URL}?status=ACTIVE").json()["results"]] == [mine.pk]
    assert sender_api.get(f"{URL}?status=EXPIRED").json()["results"] == []
    assert_error(sender_api.get(f"{URL}?status=NOPE"), 400, "validation_error")


def test_scopes(keyed_client, support_api, anon_api):
    payload = mandate_payload(UserFactory())
    assert_error(support_api.post(URL, payload, format="json"), 403)
    assert_error(keyed_client(["gov"]).get(URL), 403)
    assert_error(anon_api.get(URL), 401)
    assert_error(support_api.post(f"{URL}/cleanup", {}, format="json"), 403)
    assert UsageMandate.objects.count() == 0


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"total_amount": "0"}, "total_amount"),
        ({"total_amount": "0.00"}, "total_amount"),
        ({"total_amount": "-10.00"}, "total_amount"),
        ({"total_amount": "10.005"}, "total_amount"),
        ({"total_amount": "12345678901234567.00"}, "total_amount"),
        ({"total_amount": "Infinity"}, "total_amount"),
        ({"total_amount": True}, "total_amount"),
        ({"currency": "GBP"}, "currency"),
        ({"currency": "usdd"}, "currency"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"starts_at": "2999-01-01T00:00:00Z"}, "starts_at"),
        ({"beneficiary_id": "abc"}, "beneficiary_id"),
        ({"beneficiary_id": 10**30}, "beneficiary_id"),
        ({"sector": "weapons"}, "sector"),
        ({"allowed_category_ids": "1,2"}, "allowed_category_ids"),
        ({"allowed_merchant_ids": [0]}, "allowed_merchant_ids"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(sender_api, overrides, field):
    response = sender_api.post(URL, mandate_payload(UserFactory(), **overrides), format="json")
    error = assert_error(response, 400, "validation_error")
    assert field in (error["details"] or {}), error
    assert UsageMandate.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_junk_json_and_self_beneficiary_are_400(sender_api):
    assert_error(sender_api.post(URL, "{not json", content_type="application/json"), 400)
    assert_error(sender_api.post(URL, mandate_payload(sender_api.user), format="json"), 400, "validation_error")
    assert UsageMandate.objects.count() == 0


# The service holds these rules (the API only parses), so they are pinned here,
# at their edges; the API tests above show they leave as 400 validation_error.
@pytest.mark.parametrize(
    "starts_in, expires_in, details",
    [
        (None, timedelta(0), {"expires_at": ["Must be in the future."]}),
        (None, -timedelta(days=1), {"expires_at": ["Must be in the future."]}),
        (timedelta(days=1), timedelta(days=1), {"starts_at": ["Must be before expires_at."]}),
        (timedelta(days=2), timedelta(days=1), {"starts_at": ["Must be before expires_at."]}),
    ],
)
def test_create_refuses_an_expiry_not_in_the_future_or_not_after_the_start(starts_in, expires_in, details):
    now = timezone.now()
    with time_machine.travel(now, tick=False), pytest.raises(ValidationFailed) as refused:
        make_mandate(expires_in=expires_in, starts_at=None if starts_in is None else now + starts_in)
    assert (refused.value.status, refused.value.code, refused.value.details) == (400, "validation_error", details)
    assert UsageMandate.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_create_accepts_the_closest_valid_dates():
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        assert make_mandate(expires_in=timedelta(microseconds=1)).starts_at == now
        later = make_mandate(expires_in=timedelta(days=1), starts_at=now + timedelta(days=1) - timedelta(microseconds=1))
    assert later.status == "ACTIVE"


def test_create_refuses_the_sender_as_beneficiary():
    sender = UserFactory()
    with pytest.raises(ValidationFailed) as refused:
        make_mandate(sender=sender, beneficiary=sender)
    assert refused.value.details == {"beneficiary_id": ["The beneficiary cannot be the sender."]}
    assert UsageMandate.objects.count() == 0


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"beneficiary_id": 987654321}, "beneficiary_not_found"),
        ({"allowed_category_ids": [987654321]}, "category_not_found"),
        ({"allowed_merchant_ids": [987654321]}, "merchant_not_found"),
    ],
)
def test_unknown_ids_are_404_and_write_nothing(sender_api, overrides, code):
    payload = mandate_payload(UserFactory(), **overrides)
    assert_error(sender_api.post(URL, payload, format="json"), 404, code)
    assert UsageMandate.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_one_active_mandate_per_sender_beneficiary_currency(sender_api):
    beneficiary = UserFactory()
    first = sender_api.post(URL, mandate_payload(beneficiary), format="json")
    assert first.status_code == 201
    error = assert_error(sender_api.post(URL, mandate_payload(beneficiary), format="json"), 409, "mandate_already_active")
    assert error["details"] == {"beneficiary_id": beneficiary.pk, "currency": "USD"}
    assert sender_api.post(URL, mandate_payload(beneficiary, currency="EUR"), format="json").status_code == 201
    assert sender_api.post(URL, mandate_payload(UserFactory()), format="json").status_code == 201
    # Once the first one is no longer ACTIVE, the triple is free again.
    assert sender_api.post(f"{URL}/{first.json()['id']}/revoke", {}, format="json").status_code == 200
    assert sender_api.post(URL, mandate_payload(beneficiary), format="json").status_code == 201
    assert UsageMandate.objects.filter(status="ACTIVE").count() == 3
    assert reconcile() == []


def test_an_overdue_active_mandate_is_expired_by_the_next_create(sender_api):
    beneficiary = UserFactory()
    old = make_mandate(sender=sender_api.user, beneficiary=beneficiary, total="40.00", expires_in=timedelta(hours=1))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = sender_api.post(URL, mandate_payload(beneficiary), format="json")
    assert response.status_code == 201, response.content
    old.refresh_from_db()
    assert old.status == "EXPIRED" and balance(mandate_account(old.pk)) == 0
    assert reconcile() == []


# Written out, not read from the model: a wrong edge in ALLOWED_TRANSITIONS must fail here.
MANDATE_TRANSITIONS = {
    "ACTIVE": {"CONSUMED", "EXPIRED", "REVOKED"},
    "CONSUMED": set(),
    "EXPIRED": set(),
    "REVOKED": set(),
}


def test_the_mandate_transition_table_is_the_expected_one():
    assert set(MandateStatus.values) == set(MANDATE_TRANSITIONS)
    assert {source: set(targets) for source, targets in UsageMandate.ALLOWED_TRANSITIONS.items()} == MANDATE_TRANSITIONS


@pytest.mark.parametrize("source, target, allowed", every_pair(MANDATE_TRANSITIONS))
def test_mandate_transitions(source, target, allowed):
    assert_moves_or_is_refused(UsageMandate(status=source), target, allowed, "mandate")


def test_revoke_releases_what_is_left(sender_api, admin_api):
    mandate = make_mandate(sender=sender_api.user, total="80.00")
    other = make_mandate()
    assert_error(sender_api.post(f"{URL}/{other.pk}/revoke", {}, format="json"), 404, "mandate_not_found")
    body = sender_api.post(f"{URL}/{mandate.pk}/revoke", {}, format="json").json()
    assert body["status"] == "REVOKED" and body["remaining_amount"] == "80.00" and body["ended_at"]
    assert balance(mandate_account(mandate.pk)) == 0
    assert LedgerEntry.objects.filter(movement=f"mandate_release:{mandate.pk}", kind="mandate_release").count() == 2
    assert_error(sender_api.post(f"{URL}/{mandate.pk}/revoke", {}, format="json"), 409, "mandate_is_revoked")
    assert admin_api.post(f"{URL}/{other.pk}/revoke", {}, format="json").status_code == 200
    assert AuditLog.objects.filter(action="mandate.revoked").count() == 2
    assert reconcile() == []


# --- expiry: the cleanup endpoint, the beat task and the command share one service ------------


def _two_due_mandates(sender):
    mine = make_mandate(sender=sender, total="30.00", expires_in=timedelta(minutes=5))
    others = make_mandate(total="20.00", expires_in=timedelta(minutes=5))
    not_due = make_mandate(sender=sender, total="10.00", expires_in=timedelta(days=3))
    return mine, others, not_due


def test_cleanup_as_sender_expires_only_its_own(sender_api, admin_api):
    mine, others, not_due = _two_due_mandates(sender_api.user)
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        response = sender_api.post(f"{URL}/cleanup", {}, format="json")
        assert response.status_code == 202 and response.json() == {"expired": 1}
        assert admin_api.post(f"{URL}/cleanup", {}, format="json").json() == {"expired": 1}
        assert admin_api.post(f"{URL}/cleanup", {}, format="json").json() == {"expired": 0}
    for mandate, status in [(mine, "EXPIRED"), (others, "EXPIRED"), (not_due, "ACTIVE")]:
        mandate.refresh_from_db()
        assert mandate.status == status
    assert balance(mandate_account(mine.pk)) == 0 and balance(mandate_account(not_due.pk)) == Decimal("10.00")
    assert AuditLog.objects.filter(action="mandate.expired").count() == 2
    assert reconcile() == []


def test_beat_task_expires_due_mandates():
    mine, others, not_due = _two_due_mandates(UserFactory())
    assert expire_mandates() == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert expire_mandates() == 2
        assert expire_mandates() == 0
    assert set(UsageMandate.objects.filter(status="EXPIRED").values_list("pk", flat=True)) == {mine.pk, others.pk}
    assert reconcile() == []


def test_management_command_expires_due_mandates():
    _two_due_mandates(UserFactory())
    out = StringIO()
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        call_command("expire_mandates", stdout=out)
    assert "expired 2 mandate(s)" in out.getvalue()
    assert UsageMandate.objects.filter(status="EXPIRED").count() == 2
    assert reconcile() == []


def test_expiry_after_purchases_releases_only_the_remaining():
    merchant = make_merchant(certified=True)
    mandate = make_mandate(total="50.00", expires_in=timedelta(minutes=5))
    services.purchase_create(actor="system:test", mandate_id=mandate.pk, merchant_id=merchant.pk,
                             amount=Decimal("12.50"), currency="USD", idempotency_key="p1")
    assert services.mandates_expire_due(actor="system:test", now=mandate.expires_at) == 1
    mandate.refresh_from_db()
    assert mandate.status == "EXPIRED" and mandate.remaining_amount == Decimal("37.50")
    release = LedgerEntry.objects.get(movement=f"mandate_release:{mandate.pk}", account=PSP_CLEARING)
    assert release.amount == Decimal("37.50")
    assert balance(mandate_account(mandate.pk)) == 0
    assert reconcile() == []


@pytest.mark.no_reconcile  # breaks the books on purpose
def test_reconcile_reports_a_mandate_that_disagrees_with_the_ledger():
    mandate = make_mandate(total="50.00")
    UsageMandate.objects.filter(pk=mandate.pk).update(remaining_amount=Decimal("40.00"))
    problems = reconcile()
    assert any(f"mandate #{mandate.pk}" in p for p in problems), problems
