import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from kobatela.accounts.models import User
from kobatela.audit.models import AuditLog
from kobatela.core.idempotency import purge_expired_keys
from kobatela.core.models import IdempotencyKey
from tests.conftest import _keyed_client, assert_error
from tests.core.urls import Probe


@pytest.fixture(autouse=True)
def reset_probe():
    Probe.calls = 0
    Probe.fail_with_503 = False
    Probe.release.clear()
    Probe.started.clear()


def post_user(client, key, email="idem@example.test", **extra):
    return client.post(
        "/api/v1/users", {"email": email, "full_name": "Idem", "kind": "person"}, format="json",
        HTTP_IDEMPOTENCY_KEY=key, **extra,
    )


@pytest.mark.django_db
def test_replay_returns_stored_response_and_runs_once(admin_api):
    first = post_user(admin_api, "k1")
    assert first.status_code == 201
    second = post_user(admin_api, "k1")
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert User.objects.filter(email="idem@example.test").count() == 1


@pytest.mark.django_db
def test_json_key_order_does_not_change_fingerprint(admin_api):
    a = admin_api.post("/api/v1/users", data='{"email":"o@example.test","full_name":"O","kind":"person"}',
                       content_type="application/json", HTTP_IDEMPOTENCY_KEY="order")
    b = admin_api.post("/api/v1/users", data='{ "kind": "person", "full_name": "O", "email": "o@example.test" }',
                       content_type="application/json", HTTP_IDEMPOTENCY_KEY="order")
    assert a.status_code == b.status_code == 201 and b["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_errors_below_500_are_replayed_too(admin_api):
    bad = {"email": "nope", "full_name": "X", "kind": "person"}
    first = admin_api.post("/api/v1/users", bad, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    second = admin_api.post("/api/v1/users", bad, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    assert first.status_code == second.status_code == 400
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db
def test_same_key_other_body_is_422(admin_api):
    post_user(admin_api, "k2")
    assert_error(post_user(admin_api, "k2", email="other@example.test"), 422, "idempotency_key_reused")
    assert not User.objects.filter(email="other@example.test").exists()


@pytest.mark.django_db
def test_same_key_other_path_is_422(admin_api):
    post_user(admin_api, "k3")
    response = admin_api.post("/api/v1/apikeys", {"name": "x", "user_id": 1, "scopes": ["sender"]},
                              format="json", HTTP_IDEMPOTENCY_KEY="k3")
    assert_error(response, 422, "idempotency_key_reused")


@pytest.mark.django_db
def test_keys_are_scoped_per_api_key(keyed_client):
    one, two = keyed_client(["admin"]), keyed_client(["admin"])
    assert post_user(one, "shared", email="one@example.test").status_code == 201
    second = post_user(two, "shared", email="two@example.test")
    assert second.status_code == 201 and "Idempotent-Replayed" not in second
    assert User.objects.filter(email__in=["one@example.test", "two@example.test"]).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256])
def test_key_length_is_checked(admin_api, key):
    assert_error(post_user(admin_api, key), 400, "idempotency_key_invalid")


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls")
def test_required_key_missing_is_400(keyed_client):
    sender = keyed_client(["sender"])
    assert_error(sender.post("/test/required", {}, format="json"), 400, "idempotency_key_required")
    assert Probe.calls == 0
    assert sender.post("/test/required", {}, format="json", HTTP_IDEMPOTENCY_KEY="r1").status_code == 201


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls")
def test_5xx_is_not_stored_and_may_be_retried(keyed_client):
    sender = keyed_client(["sender"])
    Probe.fail_with_503 = True
    assert_error(sender.post("/test/counting", {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY="5xx"), 503, "psp_down")
    assert not IdempotencyKey.objects.filter(key="5xx").exists()
    Probe.fail_with_503 = False
    retry = sender.post("/test/counting", {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY="5xx")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry
    assert Probe.calls == 2


@pytest.mark.django_db
def test_keys_are_kept_24h_then_purged(admin_api):
    post_user(admin_api, "old")
    with time_machine.travel(timezone.now() + timedelta(hours=23)):
        assert purge_expired_keys() == 0
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert purge_expired_keys() == 1


@pytest.mark.django_db
def test_stale_in_progress_key_is_taken_over(admin_api):
    post_user(admin_api, "stale")
    IdempotencyKey.objects.filter(key="stale").update(
        status=IdempotencyKey.Status.IN_PROGRESS, created_at=timezone.now() - timedelta(hours=1)
    )
    User.objects.filter(email="idem@example.test").delete()
    response = post_user(admin_api, "stale")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response


def _in_thread(fn):
    try:
        return fn()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.core.urls")
def test_in_flight_request_answers_409():
    sender = _keyed_client(["sender"])
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_in_thread, lambda: sender.post("/test/slow", {}, format="json", HTTP_IDEMPOTENCY_KEY="slow"))
        assert Probe.started.wait(10)
        assert_error(sender.post("/test/slow", {}, format="json", HTTP_IDEMPOTENCY_KEY="slow"), 409,
                     "idempotency_request_in_progress")
        Probe.release.set()
        assert first.result(timeout=10).status_code == 201
    replay = sender.post("/test/slow", {}, format="json", HTTP_IDEMPOTENCY_KEY="slow")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_with_one_key_run_once():
    admin = _keyed_client(["admin"])
    barrier = threading.Barrier(20)

    def send():
        client = APIClient()  # one client per thread: test clients are not thread-safe
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin.plaintext}")
        barrier.wait()
        return post_user(client, "race", email="race@example.test").status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda _: _in_thread(send), range(20)))
    assert User.objects.filter(email="race@example.test").count() == 1
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}, statuses
    assert AuditLog.objects.filter(action="user.created", data__email="race@example.test").count() <= 1
