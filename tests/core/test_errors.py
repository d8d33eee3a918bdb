import pytest
from django.test import Client

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_route_is_404_in_shape():
    assert_error(Client().get("/nowhere"), 404, "not_found")
    assert_error(Client().get("/api/v1/nowhere"), 404, "not_found")


def test_malformed_json_is_400(admin_api):
    response = admin_api.post("/api/v1/users", data='{"email": ', content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize("body", ['{"email": NaN}', '{"email": Infinity}', "\xff\xfe", "[1, 2"])
def test_junk_json_is_400(admin_api, body):
    response = admin_api.post("/api/v1/users", data=body, content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_json_array_body_is_validation_error(admin_api):
    response = admin_api.post("/api/v1/users", data="[]", content_type="application/json")
    assert_error(response, 400, "validation_error")


def test_wrong_method_is_405_in_shape(admin_api):
    assert_error(admin_api.put(f"/api/v1/users/{admin_api.user.pk}", {}, format="json"), 405, "method_not_allowed")


# (method, path, what Allow lists): views with and without a POST handler, viewsets
# whose scopes are per action, and an APIView.
UNDECLARED = [
    ("POST", "/api/v1/users/1", "GET, PATCH, HEAD"),
    ("POST", "/health", "GET, HEAD"),
    ("POST", "/api/v1/alerts", "GET, HEAD"),
    ("PUT", "/api/v1/escrows", "GET, POST, HEAD"),
    ("DELETE", "/api/v1/escrows/1", "GET, HEAD"),
    ("GET", "/api/v1/escrows/1/deposit", "POST"),
    ("PATCH", "/api/v1/apikeys/1", "GET, DELETE, HEAD"),
    ("OPTIONS", "/api/v1/escrows", "GET, POST, HEAD"),
]


@pytest.mark.parametrize("method, path, allow", UNDECLARED)
def test_undeclared_method_is_405_with_allow_whatever_the_key(admin_api, sender_api, anon_api, method, path, allow):
    """Never 403 (a missing action read as a missing scope), 401 or 500 (a
    view without POST): the method is refused before anything is authorized."""
    for client in (admin_api, sender_api, anon_api):
        response = client.generic(method, path)
        assert_error(response, 405, "method_not_allowed")
        assert response["Allow"] == allow


@pytest.mark.parametrize("query, field", [
    ("limit=abc", "limit"), ("limit=0", "limit"), ("limit=-1", "limit"), ("limit=+5", "limit"), ("limit=", "limit"),
    ("cursor=not-a-cursor", "cursor"),
    ("status=", "status"), ("status=NOPE", "status"),
])
def test_invalid_list_parameters_are_400(admin_api, query, field):
    error = assert_error(admin_api.get(f"/api/v1/escrows?{query}"), 400, "validation_error")
    assert field in error["details"]


def test_limit_above_the_maximum_counts_as_the_maximum(admin_api):
    assert admin_api.get("/api/v1/escrows?limit=1000").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/alerts?status=", "/api/v1/events?created_after=",
                                  "/api/v1/payments?escrow_id=x", "/api/v1/kct_public/mandates?sector="])
def test_blank_or_invalid_filters_are_400_not_ignored(keyed_client, path):
    client = keyed_client(["admin", "gov"])
    assert_error(client.get(path), 400, "validation_error")


def test_unsupported_content_type_is_415(admin_api):
    response = admin_api.post("/api/v1/users", data="email=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_too_large_body_is_413(admin_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = admin_api.post("/api/v1/users", data='{"x": "' + "a" * 2000 + '"}', content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_request_id_is_echoed(admin_api):
    response = admin_api.get("/api/v1/users/0", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert assert_error(response, 404)["request_id"] == "abc-123"


def test_request_id_is_generated_or_replaced_when_unsafe():
    generated = Client().get("/health/live")["X-Request-ID"]
    assert len(generated) == 32
    replaced = Client().get("/health/live", HTTP_X_REQUEST_ID="bad id\n<script>")["X-Request-ID"]
    assert replaced != "bad id\n<script>" and len(replaced) == 32


@pytest.mark.urls("tests.core.urls")
def test_unhandled_error_is_500_in_shape():
    client = Client(raise_request_exception=False)
    error = assert_error(client.get("/test/boom"), 500, "internal_error")
    assert "a bug" not in error["message"]


def test_csrf_failure_is_403_in_shape():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert_error(response, 403, "csrf_failed")
