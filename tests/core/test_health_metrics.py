import pytest
from django.test import Client

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_live():
    response = Client().get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_reports_every_check():
    response = Client().get("/health/ready")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "cache": "ok", "broker": "ok", "storage": "ok"},
    }


def test_ready_is_503_when_a_check_fails(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    response = Client().get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == "fail"
    assert response.json()["status"] == "fail"


def test_ready_checks_the_real_broker(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the test command runs a real Redis broker
    assert Client().get("/health/ready").json()["checks"]["broker"] == "ok"


def test_detailed_health_shows_fingerprints_never_secrets(support_api, monkeypatch):
    monkeypatch.setenv("PSP_WEBHOOK_SECRET", "whsec_c2VjcmV0LXZhbHVlLWZvci10ZXN0cw==")
    response = support_api.get("/health")
    assert response.status_code == 200
    text = response.content.decode()
    assert "c2VjcmV0LXZhbHVlLWZvci10ZXN0cw" not in text
    psp = response.json()["psp"]
    assert psp["webhook_secret"]["configured"] is True and len(psp["webhook_secret"]["fingerprint"]) == 8
    assert psp["webhook_secret_next"] == {"configured": False, "fingerprint": None}
    assert "heartbeat_age_seconds" in response.json()["scheduler"]


def test_detailed_health_needs_support_or_admin(sender_api, anon_api):
    assert_error(sender_api.get("/health"), 403, "permission_denied")
    assert_error(anon_api.get("/health"), 401, "not_authenticated")


def test_metrics_answer_loopback_only_by_default():
    ok = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert ok.status_code == 200 and b"django_http_requests" in ok.content
    assert_error(Client(REMOTE_ADDR="10.1.2.3").get("/metrics"), 403, "metrics_forbidden")


def test_metrics_token(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert_error(Client(REMOTE_ADDR="127.0.0.1").get("/metrics"), 403, "metrics_forbidden")
    ok = Client(REMOTE_ADDR="10.1.2.3").get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200


def test_openapi_schema_and_docs():
    schema = Client().get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    doc = schema.json()
    users = doc["paths"]["/api/v1/users"]["post"]
    assert {"400", "401", "403", "409"} <= set(users["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in users["parameters"])
    assert {"BearerApiKey", "HeaderApiKey"} <= set(doc["components"]["securitySchemes"])
    assert Client().get("/api/v1/docs/").status_code == 200


def test_openapi_schema_validates_without_warnings(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"), stdout=StringIO())
    text = (tmp_path / "schema.yaml").read_text()
    for path in ["/api/v1/escrows/{id}/deposit", "/api/v1/proofs", "/api/v1/payments/{id}/execute", "/api/v1/psp/webhook"]:
        assert f"  {path}:" in text


def test_ready_reports_a_frozen_redis_within_a_second(settings, monkeypatch):
    """Cache and broker both on a Redis that takes connections and never answers."""
    import time

    from kobatela.celery import app
    from tests.faults.redis_servers import silent_redis

    with silent_redis() as url:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                       "OPTIONS": settings.REDIS_CLIENT_OPTIONS}}
        settings.CELERY_TASK_ALWAYS_EAGER = False  # the readiness check probes the broker
        monkeypatch.setattr(app.conf, "broker_write_url", url)  # where it connects
        started = time.monotonic()
        response = Client().get("/health/ready")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "cache": "fail", "broker": "fail",
                                         "storage": "ok"}
    assert elapsed < 1.0  # one client timeout (0.25 s), the two Redis probes side by side
