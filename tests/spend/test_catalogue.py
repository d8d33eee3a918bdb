"""Categories, merchants and standing allow rules (admin and support)."""

import pytest

from kobatela.audit.models import AuditLog
from kobatela.core.errors import ValidationFailed
from spend import services
from spend.models import AllowedUsage, Merchant, SpendCategory
from tests.conftest import assert_error
from tests.factories import UserFactory
from tests.spend.builders import make_category, make_merchant

pytestmark = pytest.mark.django_db


def test_categories(admin_api, support_api, sender_api):
    response = admin_api.post("/api/v1/spend/categories", {"code": "pharmacy", "label": "Pharmacy"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["code"] == "pharmacy"
    assert support_api.post("/api/v1/spend/categories", {"code": "school", "label": "School"}, format="json").status_code == 201
    assert_error(support_api.post("/api/v1/spend/categories", {"code": "pharmacy", "label": "Again"}, format="json"),
                 409, "category_code_taken")
    assert_error(sender_api.post("/api/v1/spend/categories", {"code": "food", "label": "Food"}, format="json"), 403)
    for bad in [{"code": "no spaces", "label": "x"}, {"code": "", "label": "x"}, {"code": "x" * 51, "label": "x"},
                {"code": "ok"}]:
        assert_error(admin_api.post("/api/v1/spend/categories", bad, format="json"), 400, "validation_error")
    assert sorted(SpendCategory.objects.values_list("code", flat=True)) == ["pharmacy", "school"]
    assert AuditLog.objects.filter(action="spend.category_created").count() == 2
    assert {c["code"] for c in sender_api.get("/api/v1/spend/categories").json()["results"]} == {"pharmacy", "school"}


def test_merchants(admin_api, sender_api):
    category = make_category()
    response = admin_api.post("/api/v1/spend/merchants", {"name": "Clinic", "category_id": category.pk,
                                                          "is_certified": True}, format="json")
    assert response.status_code == 201
    assert response.json() == {**response.json(), "name": "Clinic", "category_id": category.pk, "is_certified": True}
    plain = admin_api.post("/api/v1/spend/merchants", {"name": "Shop", "category_id": category.pk}, format="json").json()
    assert plain["is_certified"] is False
    assert_error(admin_api.post("/api/v1/spend/merchants", {"name": "X", "category_id": 987654321}, format="json"),
                 404, "category_not_found")
    assert_error(admin_api.post("/api/v1/spend/merchants", {"name": "", "category_id": category.pk}, format="json"), 400)
    assert_error(admin_api.post("/api/v1/spend/merchants", {"name": "X", "category_id": "one"}, format="json"), 400)
    assert_error(sender_api.post("/api/v1/spend/merchants", {"name": "X", "category_id": category.pk}, format="json"), 403)
    assert Merchant.objects.count() == 2
    assert len(sender_api.get("/api/v1/spend/merchants").json()["results"]) == 2


def test_allow_rules(admin_api, support_api, sender_api):
    owner = UserFactory()
    merchant, category = make_merchant(), make_category()
    by_merchant = admin_api.post("/api/v1/spend/allow", {"owner_id": owner.pk, "merchant_id": merchant.pk}, format="json")
    assert by_merchant.status_code == 201
    assert by_merchant.json() == {**by_merchant.json(), "owner_id": owner.pk, "merchant_id": merchant.pk, "category_id": None}
    by_category = support_api.post("/api/v1/spend/allow", {"owner_id": owner.pk, "category_id": category.pk}, format="json")
    assert by_category.status_code == 201 and by_category.json()["category_id"] == category.pk
    # Allowing what is already allowed answers the same rule.
    again = admin_api.post("/api/v1/spend/allow", {"owner_id": owner.pk, "merchant_id": merchant.pk}, format="json")
    assert again.status_code == 201 and again.json()["id"] == by_merchant.json()["id"]
    assert AllowedUsage.objects.count() == 2


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"merchant": True, "category": True}, 400, "validation_error"),
        ({}, 400, "validation_error"),
        ({"owner_id": 987654321, "merchant": True}, 404, "owner_not_found"),
        ({"merchant_id": 987654321}, 404, "merchant_not_found"),
        ({"category_id": 987654321}, 404, "category_not_found"),
        ({"owner_id": "me", "merchant": True}, 400, "validation_error"),
    ],
)
def test_allow_rule_refusals_write_nothing(admin_api, body, status, code):
    owner, merchant, category = UserFactory(), make_merchant(), make_category()
    payload = {"owner_id": owner.pk}
    if body.pop("merchant", False):
        payload["merchant_id"] = merchant.pk
    if body.pop("category", False):
        payload["category_id"] = category.pk
    payload.update(body)
    assert_error(admin_api.post("/api/v1/spend/allow", payload, format="json"), status, code)
    assert AllowedUsage.objects.count() == 0


@pytest.mark.parametrize("merchant, category", [(False, False), (True, True)])
def test_allow_rule_service_needs_exactly_one_target(merchant, category):
    """The rule lives in the service only; the API answers its error as is (above)."""
    target = {"merchant_id": make_merchant().pk if merchant else None,
              "category_id": make_category().pk if category else None}
    with pytest.raises(ValidationFailed) as refused:
        services.allowed_usage_create(actor="system:test", owner_id=UserFactory().pk, **target)
    assert (refused.value.status, refused.value.code, refused.value.details) == (
        400, "validation_error", {"non_field_errors": ["Give exactly one of merchant_id and category_id."]})
    assert AllowedUsage.objects.count() == 0


def test_allow_needs_staff(sender_api):
    body = {"owner_id": sender_api.user.pk, "merchant_id": make_merchant().pk}
    assert_error(sender_api.post("/api/v1/spend/allow", body, format="json"), 403)
    assert AllowedUsage.objects.count() == 0
