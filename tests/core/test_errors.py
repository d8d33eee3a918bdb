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
