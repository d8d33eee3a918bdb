from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from kobatela.audit.models import AuditLog
from kobatela.core.errors import Conflict
from payments.ledger import balance, mandate_account, merchant_account
from payments.models import LedgerEntry
from payments.reconcile import reconcile
from spend import services
from spend.models import Purchase, UsageMandate
from tests.conftest import assert_error
from tests.factories import UserFactory
from tests.spend.builders import make_category, make_mandate, make_merchant, purchase_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/spend/purchases"
_keys = iter(range(10**6))


def buy(api, body, key=None):
    return api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key or f"k-{next(_keys)}")


def nothing_written(mandate, remaining):
    mandate.refresh_from_db()
    assert mandate.remaining_amount == Decimal(remaining)
    assert Purchase.objects.filter(mandate=mandate).count() == 0
    assert not LedgerEntry.objects.filter(kind="purchase").exists()


def test_purchase_consumes_the_budget_and_posts_the_ledger(sender_api):
    merchant = make_merchant()
    mandate = make_mandate(sender=sender_api.user, total="100.00", merchants=[merchant])
    response = buy(sender_api, purchase_body(mandate, merchant, "30.00"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["amount"] == "30.00" and body["currency"] == "USD" and body["merchant_id"] == merchant.pk
    assert body["category_id"] == merchant.category_id and body["mandate_id"] == mandate.pk
    assert body["mandate"]["remaining_amount"] == "70.00" and body["mandate"]["status"] == "ACTIVE"
    assert balance(mandate_account(mandate.pk)) == Decimal("70.00")
    assert balance(merchant_account(merchant.pk)) == Decimal("30.00")
    assert AuditLog.objects.filter(action="purchase.created", entity_id=str(body["id"])).exists()

    last = buy(sender_api, purchase_body(mandate, merchant, "70.00")).json()
    assert last["mandate"] == {**last["mandate"], "status": "CONSUMED", "remaining_amount": "0.00"}
    assert AuditLog.objects.filter(action="mandate.consumed", entity_id=str(mandate.pk)).count() == 1
    assert_error(buy(sender_api, purchase_body(mandate, merchant, "0.01")), 409, "mandate_is_consumed")
    assert Purchase.objects.filter(mandate=mandate).count() == 2
    assert reconcile() == []


def test_list_and_read_purchases_are_scoped(sender_api, support_api):
    merchant = make_merchant(certified=True)
    mine = make_mandate(sender=sender_api.user)
    theirs = make_mandate()
    own = buy(sender_api, purchase_body(mine, merchant)).json()
    other = services.purchase_create(actor="system:test", mandate_id=theirs.pk, merchant_id=merchant.pk,
                                     amount=Decimal("5.00"), currency="USD", idempotency_key="x")
    assert [p["id"] for p in sender_api.get(URL).json()["results"]] == [own["id"]]
    assert sender_api.get(f"{URL}/{own['id']}").json()["id"] == own["id"]
    assert_error(sender_api.get(f"{URL}/{other.pk}"), 404)
    assert {own["id"], other.pk} <= {p["id"] for p in support_api.get(URL).json()["results"]}


# --- what makes a merchant allowed ---------------------------------------------------------


@pytest.mark.parametrize("rule", ["mandate_merchant", "mandate_category", "usage_merchant", "usage_category", "certified"])
def test_each_way_a_merchant_is_allowed(sender_api, admin_api, rule):
    category = make_category()
    merchant = make_merchant(category=category, certified=rule == "certified")
    mandate = make_mandate(sender=sender_api.user,
                           merchants=[merchant] if rule == "mandate_merchant" else [],
                           categories=[category] if rule == "mandate_category" else [])
    if rule.startswith("usage_"):
        target = {"merchant_id": merchant.pk} if rule == "usage_merchant" else {"category_id": category.pk}
        assert admin_api.post("/api/v1/spend/allow", {"owner_id": sender_api.user.pk, **target}, format="json").status_code == 201
    assert buy(sender_api, purchase_body(mandate, merchant)).status_code == 201


def test_a_merchant_allowed_by_nothing_is_403_and_writes_nothing(sender_api):
    allowed_category, other_category = make_category(), make_category()
    merchant = make_merchant(category=other_category)
    mandate = make_mandate(sender=sender_api.user, categories=[allowed_category], merchants=[make_merchant()])
    # Another owner's standing rule does not count.
    services.allowed_usage_create(actor="system:test", owner_id=UserFactory().pk, merchant_id=merchant.pk)
    error = assert_error(buy(sender_api, purchase_body(mandate, merchant)), 403, "merchant_not_allowed")
    assert error["details"] == {"merchant_id": merchant.pk, "category_id": other_category.pk}
    nothing_written(mandate, "100.00")


def test_an_allowed_category_given_explicitly_is_accepted(sender_api):
    allowed = make_category()
    merchant = make_merchant()
    mandate = make_mandate(sender=sender_api.user, categories=[allowed])
    assert_error(buy(sender_api, purchase_body(mandate, merchant)), 403, "merchant_not_allowed")
    response = buy(sender_api, purchase_body(mandate, merchant, category_id=allowed.pk))
    assert response.status_code == 201 and response.json()["category_id"] == allowed.pk


# --- refusals -----------------------------------------------------------------------------


def test_unknown_or_foreign_ids_are_404(sender_api, admin_api):
    merchant = make_merchant(certified=True)
    mine = make_mandate(sender=sender_api.user)
    theirs = make_mandate()
    assert_error(buy(sender_api, purchase_body(theirs, merchant)), 404, "mandate_not_found")
    assert_error(buy(sender_api, {**purchase_body(mine, merchant), "mandate_id": 987654321}), 404, "mandate_not_found")
    assert_error(buy(sender_api, {**purchase_body(mine, merchant), "merchant_id": 987654321}), 404, "merchant_not_found")
    assert_error(buy(sender_api, purchase_body(mine, merchant, category_id=987654321)), 404, "category_not_found")
    nothing_written(theirs, "100.00")
    nothing_written(mine, "100.00")
    assert buy(admin_api, purchase_body(theirs, merchant)).status_code == 201  # admin acts on every account


def test_over_the_remaining_budget_is_409(sender_api):
    merchant = make_merchant(certified=True)
    mandate = make_mandate(sender=sender_api.user, total="20.00")
    error = assert_error(buy(sender_api, purchase_body(mandate, merchant, "20.01")), 409, "insufficient_budget")
    assert error["details"] == {"remaining_amount": "20.00", "amount": "20.01"}
    nothing_written(mandate, "20.00")


def test_expired_not_started_revoked_are_409(sender_api):
    merchant = make_merchant(certified=True)
    expiring = make_mandate(sender=sender_api.user, expires_in=timedelta(hours=1))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert_error(buy(sender_api, purchase_body(expiring, merchant)), 409, "mandate_expired")
        services.mandates_expire_due(actor="system:test")
        assert_error(buy(sender_api, purchase_body(expiring, merchant)), 409, "mandate_is_expired")

    later = make_mandate(sender=sender_api.user, starts_at=timezone.now() + timedelta(days=1), currency="EUR")
    assert_error(buy(sender_api, purchase_body(later, merchant)), 409, "mandate_not_started")
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert buy(sender_api, purchase_body(later, merchant)).status_code == 201

    revoked = make_mandate(sender=sender_api.user, currency="CDF")
    services.mandate_revoke(actor="system:test", mandate_id=revoked.pk)
    assert_error(buy(sender_api, purchase_body(revoked, merchant)), 409, "mandate_is_revoked")
    assert Purchase.objects.count() == 1
    assert reconcile() == []


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "12345678901234567.00"}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": "GBP"}, "currency"),
        ({"mandate_id": "abc"}, "mandate_id"),
        ({"merchant_id": -3}, "merchant_id"),
        ({"category_id": 10**30}, "category_id"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(sender_api, patch, field):
    merchant = make_merchant(certified=True)
    mandate = make_mandate(sender=sender_api.user)
    error = assert_error(buy(sender_api, {**purchase_body(mandate, merchant), **patch}), 400, "validation_error")
    assert field in (error["details"] or {}), error
    nothing_written(mandate, "100.00")


def test_wrong_currency_junk_json_and_missing_key_are_400(sender_api):
    merchant = make_merchant(certified=True)
    mandate = make_mandate(sender=sender_api.user)
    error = assert_error(buy(sender_api, {**purchase_body(mandate, merchant), "currency": "EUR"}), 400, "currency_mismatch")
    assert "currency" in error["details"]
    assert_error(sender_api.post(URL, "{junk", content_type="application/json", HTTP_IDEMPOTENCY_KEY="j"), 400)
    assert_error(sender_api.post(URL, purchase_body(mandate, merchant), format="json"), 400, "idempotency_key_required")
    nothing_written(mandate, "100.00")


def test_scopes(keyed_client, support_api):
    merchant = make_merchant(certified=True)
    mandate = make_mandate()
    assert_error(buy(support_api, purchase_body(mandate, merchant)), 403)
    assert_error(buy(keyed_client(["ong"]), purchase_body(mandate, merchant)), 403)
    nothing_written(mandate, "100.00")


# --- idempotency ------------------------------------------------------------------------------


def test_replay_returns_the_same_purchase_once(sender_api):
    merchant = make_merchant(certified=True)
    mandate = make_mandate(sender=sender_api.user)
    first = buy(sender_api, purchase_body(mandate, merchant, "15.00"), key="once")
    again = buy(sender_api, purchase_body(mandate, merchant, "15.00"), key="once")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert_error(buy(sender_api, purchase_body(mandate, merchant, "16.00"), key="once"), 422, "idempotency_key_reused")
    # A refusal is replayed too, and still writes nothing.
    refused = buy(sender_api, purchase_body(mandate, merchant, "500.00"), key="big")
    assert_error(refused, 409, "insufficient_budget")
    replayed = buy(sender_api, purchase_body(mandate, merchant, "500.00"), key="big")
    assert replayed.status_code == 409 and replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == refused.json()  # the stored body, as first answered
    assert Purchase.objects.filter(mandate=mandate).count() == 1
    mandate.refresh_from_db()
    assert mandate.remaining_amount == Decimal("85.00")
    assert reconcile() == []


def test_the_database_key_stops_a_second_purchase_even_without_the_replay_store():
    merchant = make_merchant(certified=True)
    mandate = make_mandate()
    args = dict(actor="system:test", mandate_id=mandate.pk, merchant_id=merchant.pk, currency="USD", idempotency_key="k")
    first = services.purchase_create(amount=Decimal("10.00"), **args)
    assert services.purchase_create(amount=Decimal("10.00"), **args).pk == first.pk
    with pytest.raises(Conflict) as refused:
        services.purchase_create(amount=Decimal("11.00"), **args)
    assert refused.value.code == "purchase_key_reused"
    assert UsageMandate.objects.get(pk=mandate.pk).remaining_amount == Decimal("90.00")
    assert reconcile() == []
