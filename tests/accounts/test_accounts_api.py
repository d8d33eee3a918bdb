from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from kobatela.accounts.models import ApiKey, User
from kobatela.audit.models import AuditLog
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_create_user(support_api):
    response = support_api.post(
        "/api/v1/users", {"email": "Ada@Example.TEST", "full_name": "Ada L", "kind": "company"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "ada@example.test"
    assert set(body) == {"id", "email", "full_name", "kind", "payout_status", "created_at"}
    assert AuditLog.objects.filter(action="user.created", entity_id=str(body["id"])).exists()
    assert support_api.get(f"/api/v1/users/{body['id']}").json()["email"] == "ada@example.test"


def test_duplicate_email_is_409_case_insensitive(admin_api):
    payload = {"email": "dup@example.test", "full_name": "One", "kind": "person"}
    assert admin_api.post("/api/v1/users", payload, format="json").status_code == 201
    payload["email"] = "DUP@example.test"
    assert_error(admin_api.post("/api/v1/users", payload, format="json"), 409, "email_taken")
    assert User.objects.filter(email="dup@example.test").count() == 1


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"email": "not-an-email", "full_name": "X", "kind": "person"}, "email"),
        ({"email": "a@example.test", "full_name": "X", "kind": "alien"}, "kind"),
        ({"email": "a@example.test", "full_name": ["X"], "kind": "person"}, "full_name"),
        ({"email": "a@example.test", "full_name": "", "kind": "person"}, "full_name"),
        ({"email": 12, "full_name": "X", "kind": "person"}, "email"),
        ({"full_name": "X", "kind": "person"}, "email"),
        ({"email": "a@example.test", "full_name": "X"}, "kind"),  # was a 500 (the service needs it)
        ({"email": "a@example.test", "full_name": "X", "kind": None}, "kind"),
    ],
)
def test_bad_user_input_is_400_and_writes_nothing(admin_api, payload, field):
    before = User.objects.count()
    error = assert_error(admin_api.post("/api/v1/users", payload, format="json"), 400, "validation_error")
    assert field in error["details"]
    assert User.objects.count() == before


def test_users_need_support_or_admin(sender_api):
    response = sender_api.post("/api/v1/users", {"email": "x@example.test", "full_name": "X", "kind": "person"}, format="json")
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize("bad_id", ["999999999", "999999999999999999"])
def test_unknown_user_is_404(support_api, bad_id):
    assert_error(support_api.get(f"/api/v1/users/{bad_id}"), 404, "not_found")


def test_absurd_id_is_404_not_500(support_api):
    assert_error(support_api.get("/api/v1/users/99999999999999999999999"), 404, "not_found")


def test_create_api_key_shows_key_once(admin_api):
    target = User.objects.create_user(email="int@example.test", full_name="Integrator")
    response = admin_api.post(
        "/api/v1/apikeys", {"name": "prod", "user_id": target.pk, "scopes": ["sender"]}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "prefix", "scopes", "key", "created_at", "expires_at"}
    assert body["key"].startswith(f"kbt_{body['prefix']}_")
    shown = admin_api.get(f"/api/v1/apikeys/{body['id']}").json()
    assert "key" not in shown and body["key"] not in str(shown)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=body["key"])
    # the new key is a sender key: authenticated (not 401), but users need support
    assert_error(client.get(f"/api/v1/users/{target.pk}"), 403, "permission_denied")


@pytest.mark.parametrize(
    "payload_update, field",
    [
        ({"scopes": ["superuser"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"scopes": "admin"}, "scopes"),
        ({"user_id": 987654321}, "user_id"),
        ({"user_id": "abc"}, "user_id"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_api_key_input_is_400_and_writes_nothing(admin_api, payload_update, field):
    payload = {"name": "k", "user_id": admin_api.user.pk, "scopes": ["sender"], **payload_update}
    before = ApiKey.objects.count()
    error = assert_error(admin_api.post("/api/v1/apikeys", payload, format="json"), 400, "validation_error")
    assert field in error["details"]
    assert ApiKey.objects.count() == before


def test_api_keys_need_admin(support_api):
    assert_error(
        support_api.post("/api/v1/apikeys", {"name": "k", "user_id": support_api.user.pk, "scopes": ["sender"]}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(support_api.get(f"/api/v1/apikeys/{support_api.api_key.pk}"), 403, "permission_denied")


def test_revoke_is_204_then_404_for_unknown(admin_api, keyed_client):
    victim = keyed_client(["sender"])
    assert admin_api.delete(f"/api/v1/apikeys/{victim.api_key.pk}").status_code == 204
    assert admin_api.delete(f"/api/v1/apikeys/{victim.api_key.pk}").status_code == 204  # idempotent
    assert ApiKey.objects.get(pk=victim.api_key.pk).revoked_at is not None
    assert AuditLog.objects.filter(action="apikey.revoked", entity_id=str(victim.api_key.pk)).count() == 1
    assert_error(admin_api.delete("/api/v1/apikeys/987654321"), 404, "not_found")


def test_api_key_expiry_is_returned(admin_api):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    body = admin_api.post(
        "/api/v1/apikeys",
        {"name": "k", "user_id": admin_api.user.pk, "scopes": ["sender"], "expires_at": expires.isoformat()},
        format="json",
    ).json()
    assert body["expires_at"].replace("Z", "+00:00") == expires.isoformat()


def test_create_api_key_command_prints_key_last():
    out = StringIO()
    call_command("create_api_key", "--email", "ops@example.test", "--scopes", "admin,support", stdout=out)
    lines = out.getvalue().strip().splitlines()
    key = lines[-1]
    assert key.startswith("kbt_") and " " not in key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    user = User.objects.get(email="ops@example.test")
    assert client.get(f"/api/v1/users/{user.pk}").status_code == 200
    # a second key for the same account reuses it
    call_command("create_api_key", "--email", "ops@example.test", "--scopes", "sender", stdout=StringIO())
    assert User.objects.filter(email="ops@example.test").count() == 1
    assert ApiKey.objects.filter(user=user).count() == 2


def test_create_api_key_command_refuses_unknown_scope():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", "--email", "x@example.test", "--scopes", "root", stdout=StringIO())
    assert not User.objects.filter(email="x@example.test").exists()
