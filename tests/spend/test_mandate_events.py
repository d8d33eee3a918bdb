"""Mandates emit their outbound events in the transaction that changes them."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from kobatela.events.models import Event

pytestmark = pytest.mark.django_db


def test_mandate_created_consumed_and_expired_are_events(sender_api, admin_api):
    from tests.factories import UserFactory

    beneficiary = UserFactory()
    category = admin_api.post("/api/v1/spend/categories", {"code": "food", "label": "Food"}, format="json").json()
    merchant = admin_api.post("/api/v1/spend/merchants", {"name": "Market", "category_id": category["id"]},
                              format="json").json()
    mandate = sender_api.post("/api/v1/mandates", {
        "beneficiary_id": beneficiary.pk, "total_amount": "20.00", "currency": "USD",
        "allowed_merchant_ids": [merchant["id"]], "expires_at": (timezone.now() + timedelta(days=1)).isoformat(),
    }, format="json").json()
    purchase = sender_api.post("/api/v1/spend/purchases", {"mandate_id": mandate["id"], "merchant_id": merchant["id"],
                                                           "amount": "20.00", "currency": "USD"},
                               format="json", HTTP_IDEMPOTENCY_KEY="p1")
    assert purchase.status_code == 201, purchase.content
    other = sender_api.post("/api/v1/mandates", {
        "beneficiary_id": UserFactory().pk, "total_amount": "5.00", "currency": "USD",
        "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
    }, format="json").json()
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert sender_api.post("/api/v1/mandates/cleanup", format="json").json() == {"expired": 1}
    types = list(Event.objects.filter(account_id=sender_api.user.pk).order_by("id").values_list("type", flat=True))
    assert types == ["mandate.created", "mandate.consumed", "mandate.created", "mandate.expired"]
    expired = Event.objects.get(type="mandate.expired", account_id=sender_api.user.pk)
    assert expired.object_type == "mandate" and expired.object_id == str(other["id"])
    assert expired.data["status"] == "EXPIRED" and Decimal(expired.data["remaining_amount"]) == Decimal("5.00")
