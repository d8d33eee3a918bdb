"""``GET /kct_public/mandates``: aggregates for public bodies, nothing personal."""

import json
from decimal import Decimal

import pytest

from spend import services
from tests.conftest import assert_error
from tests.factories import UserFactory
from tests.spend.builders import make_mandate, make_merchant

pytestmark = pytest.mark.django_db

URL = "/api/v1/kct_public/mandates"
ROW_KEYS = {"sector", "status", "currency", "count", "total_amount", "remaining_amount", "spent_amount"}


@pytest.fixture
def population():
    """Five mandates: two health USD (one partly spent), one health USD revoked,
    one education EUR, one food USD consumed."""
    merchant = make_merchant(certified=True)
    senders = [UserFactory(full_name="Alice Sender", email="alice.sender@example.test"),
               UserFactory(full_name="Bob Sender")]
    beneficiary = UserFactory(full_name="Carol Beneficiary", email="carol.beneficiary@example.test")
    health_a = make_mandate(sender=senders[0], beneficiary=beneficiary, total="100.00", sector="health")
    make_mandate(sender=senders[1], beneficiary=beneficiary, total="50.00", sector="health")
    revoked = make_mandate(sender=senders[0], total="30.00", sector="health")
    services.mandate_revoke(actor="system:test", mandate_id=revoked.pk)
    make_mandate(sender=senders[1], total="70.00", currency="EUR", sector="education")
    food = make_mandate(sender=senders[0], total="20.00", sector="food")
    for mandate, amount, key in [(health_a, "40.00", "a"), (food, "20.00", "b")]:
        services.purchase_create(actor="system:test", mandate_id=mandate.pk, merchant_id=merchant.pk,
                                 amount=Decimal(amount), currency=mandate.currency, idempotency_key=key)
    return {"users": [*senders, beneficiary], "mandates": [health_a, revoked, food]}


def test_aggregates_by_sector_status_currency(keyed_client, population):
    body = keyed_client(["gov"]).get(URL).json()
    assert set(body) == {"results"}
    rows = {(r["sector"], r["status"], r["currency"]): r for r in body["results"]}
    assert rows[("health", "ACTIVE", "USD")] == {"sector": "health", "status": "ACTIVE", "currency": "USD", "count": 2,
                                                 "total_amount": "150.00", "remaining_amount": "110.00",
                                                 "spent_amount": "40.00"}
    assert rows[("health", "REVOKED", "USD")]["count"] == 1
    assert rows[("health", "REVOKED", "USD")]["spent_amount"] == "0.00"
    assert rows[("education", "ACTIVE", "EUR")]["total_amount"] == "70.00"
    assert rows[("food", "CONSUMED", "USD")] == {**rows[("food", "CONSUMED", "USD")], "spent_amount": "20.00",
                                                 "remaining_amount": "0.00"}
    assert len(rows) == 4


def test_filters(keyed_client, population):
    ong = keyed_client(["ong"])
    health = ong.get(f"{URL}?sector=health").json()["results"]
    assert {r["status"] for r in health} == {"ACTIVE", "REVOKED"} and {r["sector"] for r in health} == {"health"}
    active_health = ong.get(f"{URL}?sector=health&status=ACTIVE").json()["results"]
    assert [(r["count"], r["total_amount"]) for r in active_health] == [(2, "150.00")]
    assert ong.get(f"{URL}?status=EXPIRED").json()["results"] == []
    for bad in ["sector=weapons", "status=active", "sector=HEALTH", "status=ACTIVE&status=nope"]:
        assert_error(ong.get(f"{URL}?{bad}"), 400, "validation_error")


def test_nothing_personal_leaks(keyed_client, population):
    response = keyed_client(["gov"]).get(URL)
    text = response.content.decode()
    for user in population["users"]:
        for value in (user.email, user.full_name, user.email.split("@")[0]):
            assert value not in text
    for row in response.json()["results"]:
        assert set(row) == ROW_KEYS  # no id, sender, beneficiary, merchant or date of any single mandate

    def keys(value):
        if isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from keys(item)
        elif isinstance(value, list):
            for item in value:
                yield from keys(item)

    assert not [k for k in keys(json.loads(text)) if "id" in k or "name" in k or "email" in k]


def test_only_public_bodies_read_it(sender_api, admin_api, support_api, anon_api):
    for api in (sender_api, admin_api, support_api):
        assert_error(api.get(URL), 403)
    assert_error(anon_api.get(URL), 401)
