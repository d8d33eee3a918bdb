"""Outbound webhooks end to end, against a real receiver on 127.0.0.1.

Events come from the real services (escrows created and funded as the API
would); every delivered request is verified with the reference
``standardwebhooks`` library; time is moved with time-machine and the beat
sweeper is run at each retry's time.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone as dj_timezone
from standardwebhooks.webhooks import WebhookVerificationError

from kobatela.audit.models import Alert, AuditLog
from kobatela.events import services as events
from kobatela.events.models import Event
from tests.factories import UserFactory, fund, make_escrow
from tests.support.webhook_receiver import WebhookReceiver
from webhooks import targets, transport
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbound import delivery as outbound
from webhooks.outbound.endpoints import new_secret
from webhooks.tasks import deliver_webhook, sweep_deliveries

START = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)
PUBLIC_IP = "93.184.215.14"


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def allow_private(settings):
    """The loopback receiver is a private target: allowed only where a test asks."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def register(api, url, **extra) -> dict:
    response = api.post("/api/v1/webhook-endpoints", {"url": url, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def deliveries(**filters):
    return list(WebhookDelivery.objects.filter(**filters).order_by("pk"))


# --- signing and the first attempt -----------------------------------------------------------


@pytest.mark.django_db
def test_event_is_delivered_signed_and_verifiable(sender_api, receiver, allow_private,
                                                  django_capture_on_commit_callbacks):
    endpoint = register(sender_api, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        escrow = make_escrow(client=sender_api.user)
    assert receiver.count == 1
    request = receiver.requests[0]
    payload = request.verify(endpoint["secret"])  # raises unless the standardwebhooks library accepts it
    event = Event.objects.get(type="escrow.created")
    assert request.headers["webhook-id"] == str(event.pk)
    assert request.headers["content-type"] == "application/json"
    assert payload["type"] == "escrow.created" and payload["id"] == event.pk
    assert payload["object_type"] == "escrow" and payload["object_id"] == str(escrow.pk)
    # The body is EventRead: exactly what GET /events/{id} answers.
    assert payload == sender_api.get(f"/api/v1/events/{event.pk}").json()
    assert payload["data"]["amount_total"] == "100.00" and payload["data"]["status"] == "DRAFT"
    (delivery,) = deliveries()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.attempt == 1
    assert delivery.last_status_code == 200 and delivery.last_duration_ms is not None and delivery.last_error == ""


@pytest.mark.django_db
def test_subscriptions_filter_types(sender_api, receiver, allow_private, django_capture_on_commit_callbacks):
    register(sender_api, receiver.url, event_types=["escrow.funded"])
    with django_capture_on_commit_callbacks(execute=True):
        fund(make_escrow(client=sender_api.user))
    assert receiver.types() == ["escrow.funded"]
    assert Event.objects.filter(account=sender_api.user).count() == 2  # both events exist; one was subscribed


# --- retries driven by the database ---------------------------------------------------------------


@pytest.mark.django_db
def test_retries_follow_the_standard_webhooks_schedule_then_fail(sender_api, receiver, allow_private,
                                                                 django_capture_on_commit_callbacks):
    secret = register(sender_api, receiver.url)["secret"]
    receiver.respond(500)
    with time_machine.travel(START, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            make_escrow(client=sender_api.user)
        assert receiver.count == 1
        (delivery,) = deliveries()
        attempted_at = START
        for number, delay in enumerate(outbound.RETRY_SCHEDULE, start=1):
            delivery.refresh_from_db()
            assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempt == number
            assert delivery.last_status_code == 500 and delivery.last_error.startswith("http_status")
            # Jitter: within ±10 % of the scheduled delay.
            assert attempted_at + delay * 0.9 <= delivery.next_attempt_at <= attempted_at + delay * 1.1, number
            clock.move_to(delivery.next_attempt_at - timedelta(seconds=1))
            sweep_deliveries()
            assert receiver.count == number, "sent before its time"
            clock.move_to(delivery.next_attempt_at)
            sweep_deliveries()
            assert receiver.count == number + 1
            receiver.requests[-1].verify(secret)
            attempted_at = delivery.next_attempt_at
        delivery.refresh_from_db()
        assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempt == outbound.MAX_ATTEMPTS == 8
        assert delivery.next_attempt_at is None and delivery.finished_at == attempted_at
        clock.move_to(attempted_at + timedelta(days=2))
        sweep_deliveries()
    assert receiver.count == 8
    assert set(receiver.ids()) == {str(delivery.event_id)}  # one webhook-id across every retry


@pytest.mark.django_db
def test_a_retry_that_succeeds_stops_the_schedule(sender_api, receiver, allow_private,
                                                   django_capture_on_commit_callbacks):
    register(sender_api, receiver.url)
    receiver.respond(503, 502, default=204)
    with time_machine.travel(START, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            make_escrow(client=sender_api.user)
        for _ in range(2):
            clock.move_to(WebhookDelivery.objects.get().next_attempt_at)
            assert sweep_deliveries() == 1
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.attempt == 3
        assert delivery.last_status_code == 204 and delivery.next_attempt_at is None
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.failing_since is None and endpoint.last_success_at == delivery.last_attempt_at
        clock.move_to(START + timedelta(days=1))
        assert sweep_deliveries() == 0
    assert [r.answered for r in receiver.requests] == [503, 502, 204]


@pytest.mark.django_db
def test_redirects_are_not_followed(sender_api, receiver, allow_private, django_capture_on_commit_callbacks):
    register(sender_api, receiver.url)
    receiver.respond(302)
    with django_capture_on_commit_callbacks(execute=True):
        make_escrow(client=sender_api.user)
    delivery = WebhookDelivery.objects.get()
    assert receiver.count == 1 and delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.last_status_code == 302


@pytest.mark.django_db
def test_410_gone_disables_the_endpoint(sender_api, receiver, allow_private, django_capture_on_commit_callbacks):
    endpoint_id = register(sender_api, receiver.url)["id"]
    receiver.respond(410)
    with django_capture_on_commit_callbacks(execute=True):
        escrow = make_escrow(client=sender_api.user)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.last_status_code == 410
    body = sender_api.get(f"/api/v1/webhook-endpoints/{endpoint_id}").json()
    assert body["status"] == "DISABLED" and "410" in body["disabled_reason"]
    assert AuditLog.objects.filter(action="webhook_endpoint.disabled", entity_id=str(endpoint_id)).exists()

    with django_capture_on_commit_callbacks(execute=True):
        fund(escrow)
    assert receiver.count == 1 and WebhookDelivery.objects.count() == 1  # a disabled endpoint gets nothing

    receiver.respond(200)
    assert sender_api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/enable").json()["status"] == "ENABLED"
    funded = Event.objects.get(type="escrow.funded")
    with django_capture_on_commit_callbacks(execute=True):
        response = sender_api.post(f"/api/v1/events/{funded.pk}/redeliver", {}, format="json")
    assert response.status_code == 202, response.content
    assert receiver.ids()[-1] == str(funded.pk)


@pytest.mark.django_db
def test_endpoint_failing_for_five_days_is_disabled_with_an_alert(sender_api, receiver, allow_private,
                                                                 django_capture_on_commit_callbacks):
    endpoint_id = register(sender_api, receiver.url)["id"]
    receiver.respond(500)
    with time_machine.travel(START, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            escrow = make_escrow(client=sender_api.user)
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.failing_since == START and endpoint.status == WebhookEndpoint.Status.ENABLED
        clock.move_to(START + timedelta(days=4, hours=23))
        with django_capture_on_commit_callbacks(execute=True):
            fund(escrow)
        endpoint.refresh_from_db()
        assert endpoint.status == WebhookEndpoint.Status.ENABLED and not Alert.objects.filter(
            type="webhook_endpoint_disabled").exists()
        clock.move_to(START + timedelta(days=5, minutes=1))
        sweep_deliveries()  # the retries of both events still fail
    endpoint.refresh_from_db()
    assert endpoint.status == WebhookEndpoint.Status.DISABLED and "failed since" in endpoint.disabled_reason
    alert = Alert.objects.get(type="webhook_endpoint_disabled")
    assert alert.data["endpoint_id"] == endpoint_id
    # Whatever was still pending for it is closed, and the sweeper leaves it alone.
    assert not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).exists()
    assert WebhookDelivery.objects.filter(last_error="endpoint_disabled").exists()


# --- a worker dies mid-delivery -------------------------------------------------------------------


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except clause catches it."""


@pytest.mark.django_db
def test_worker_killed_mid_delivery_loses_nothing_and_resends_with_the_same_id(
        sender_api, receiver, allow_private, django_capture_on_commit_callbacks, monkeypatch):
    secret = register(sender_api, receiver.url)["secret"]
    with time_machine.travel(START, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False):  # the task message is "lost"
            make_escrow(client=sender_api.user)
        (delivery,) = deliveries()

        def die(**kwargs):
            raise WorkerKilled

        monkeypatch.setattr(outbound, "_record_attempt", die)
        with pytest.raises(WorkerKilled):
            deliver_webhook(delivery.pk)  # claimed, sent, then the worker died before recording
        monkeypatch.undo()
        assert receiver.count == 1
        delivery.refresh_from_db()
        assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempt == 1
        assert delivery.next_attempt_at == START + outbound.LEASE

        # While the lease runs, neither a redelivered message nor the sweeper sends it again.
        assert deliver_webhook(delivery.pk) == "not_due"
        assert sweep_deliveries() == 0
        clock.move_to(START + outbound.LEASE)
        assert sweep_deliveries() == 1
        assert receiver.count == 2
        for request in receiver.requests:
            request.verify(secret)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.attempt == 2
    assert receiver.ids() == [str(delivery.event_id)] * 2  # the receiver deduplicates on it


@pytest.mark.django_db
def test_a_lost_message_is_sent_by_the_sweeper(sender_api, receiver, allow_private,
                                               django_capture_on_commit_callbacks):
    register(sender_api, receiver.url)
    with django_capture_on_commit_callbacks(execute=False):
        make_escrow(client=sender_api.user)
    assert receiver.count == 0
    assert sweep_deliveries() == 1
    assert receiver.count == 1 and WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED


@pytest.mark.django_db
def test_a_broker_outage_does_not_fail_the_change_and_the_sweeper_sends_later(
        sender_api, receiver, allow_private, broker, django_capture_on_commit_callbacks):
    register(sender_api, receiver.url)
    broker.stop()
    with django_capture_on_commit_callbacks(execute=True):
        response = sender_api.post("/api/v1/escrows", {
            "provider_id": UserFactory().pk, "amount_total": "10.00", "currency": "USD",
            "deadline_at": "2099-01-01T00:00:00Z",
            "milestones": [{"label": "all", "amount": "10.00", "proof_type": "PHOTO"}]}, format="json")
    assert response.status_code == 201, response.content
    delivery = WebhookDelivery.objects.get()
    assert receiver.count == 0 and delivery.status == WebhookDelivery.Status.PENDING

    broker.start()
    assert sweep_deliveries() == 1 and broker.queued() == 1  # the sweeper queued it for a worker
    deliver_webhook(delivery.pk)  # what the worker runs
    assert receiver.types() == ["escrow.created"]


@pytest.mark.django_db
def test_a_stale_worker_cannot_overwrite_the_attempt_that_superseded_it(sender_api, receiver, allow_private,
                                                                       django_capture_on_commit_callbacks):
    register(sender_api, receiver.url)
    with time_machine.travel(START, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False):
            make_escrow(client=sender_api.user)
        delivery = WebhookDelivery.objects.select_related("event", "endpoint").get()
        assert outbound.delivery_claim(delivery.pk) == 1
        clock.move_to(START + outbound.LEASE)
        assert deliver_webhook(delivery.pk) == "SUCCEEDED"  # attempt 2 took over and finished
        late = outbound._record_attempt(delivery=delivery, attempt=1,
                                        result=outbound.AttemptResult(500, 10, "http_status: 500"))
    assert late == "superseded"
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.last_status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_an_attempt_once(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    user = UserFactory()
    make_escrow(client=user)  # commits escrow.created; no endpoint yet, so no delivery
    endpoint = WebhookEndpoint.objects.create(account=user, url=receiver.url, secret=new_secret())
    delivery = WebhookDelivery.objects.create(event=Event.objects.get(account=user), endpoint=endpoint,
                                              next_attempt_at=dj_timezone.now())
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker():
        try:
            barrier.wait()
            results.append(outbound.delivery_attempt(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["SUCCEEDED"] + ["not_due"] * 7
    assert receiver.count == 1


@pytest.mark.django_db(transaction=True)
def test_emit_refuses_to_run_outside_a_transaction():
    escrow = make_escrow()
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events.emit(account_id=escrow.client_id, type="escrow.created", resource=escrow)


# --- tenancy ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_account_never_receives_another_accounts_events(keyed_client, allow_private,
                                                            django_capture_on_commit_callbacks):
    alice, bob = keyed_client(["sender"]), keyed_client(["sender"])
    with WebhookReceiver() as alice_hooks, WebhookReceiver() as bob_hooks:
        alice_secret = register(alice, alice_hooks.url)["secret"]
        bob_secret = register(bob, bob_hooks.url)["secret"]
        with django_capture_on_commit_callbacks(execute=True):
            fund(make_escrow(client=alice.user))
            make_escrow(client=bob.user, provider=alice.user)  # alice is only the provider here
        assert alice_hooks.types() == ["escrow.created", "escrow.funded"]
        assert bob_hooks.types() == ["escrow.created"]
        assert {p["account_id"] for p in alice_hooks.verify(alice_secret)} == {alice.user.pk}
        assert {p["account_id"] for p in bob_hooks.verify(bob_secret)} == {bob.user.pk}
        with pytest.raises(WebhookVerificationError):
            bob_hooks.requests[0].verify(alice_secret)


# --- secret rotation -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotation_signs_with_both_secrets_for_24_hours_then_only_the_new_one(
        sender_api, receiver, allow_private, django_capture_on_commit_callbacks):
    created = register(sender_api, receiver.url)
    old = created["secret"]
    with time_machine.travel(START, tick=False) as clock:
        rotated = sender_api.post(f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.content
        new = rotated.json()["secret"]
        assert new != old and new.startswith("whsec_")
        assert rotated.json()["previous_secret_expires_at"] == "2026-03-03T09:00:00Z"
        with django_capture_on_commit_callbacks(execute=True):
            escrow = make_escrow(client=sender_api.user)
        during = receiver.requests[-1]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        during.verify(old)
        during.verify(new)

        clock.move_to(START + timedelta(hours=24, seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            fund(escrow)
        after = receiver.requests[-1]
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        after.verify(new)
        with pytest.raises(WebhookVerificationError):
            after.verify(old)


# --- SSRF at delivery ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_loopback_host_is_refused_at_delivery_when_private_targets_are_not_allowed(
        sender_api, receiver, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    register(sender_api, f"https://localhost:{receiver.port}/hooks")  # e.g. registered while it was allowed
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with django_capture_on_commit_callbacks(execute=True):
        make_escrow(client=sender_api.user)
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("webhook_url_forbidden") and "loopback" in delivery.last_error
    assert delivery.last_status_code is None and receiver.count == 0
    assert delivery.status == WebhookDelivery.Status.PENDING  # retried on the schedule, like any failure


@pytest.mark.django_db
def test_dns_rebinding_to_a_private_address_is_refused_at_delivery(sender_api, receiver, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    answers = {"hooks.integrator.test": [PUBLIC_IP]}
    monkeypatch.setattr(targets, "resolve", lambda host, port: list(answers[host]))
    register(sender_api, f"https://hooks.integrator.test:{receiver.port}/hooks")
    answers["hooks.integrator.test"] = ["10.0.0.7", "127.0.0.1"]  # the name now points inside
    with django_capture_on_commit_callbacks(execute=True):
        make_escrow(client=sender_api.user)
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("webhook_url_forbidden") and receiver.count == 0


@pytest.mark.django_db
def test_delivery_connects_to_the_address_it_checked_without_resolving_again(
        sender_api, receiver, allow_private, monkeypatch, django_capture_on_commit_callbacks):
    """First answer 127.0.0.1 (checked, allowed here); any later lookup would say
    something else. The request reaches the receiver with the host name in Host."""
    calls: list[str] = []

    def resolve(host, port):
        calls.append(host)
        return ["127.0.0.1"] if len(calls) <= 2 else ["192.0.2.99"]  # registration, then the attempt

    monkeypatch.setattr(targets, "resolve", resolve)
    register(sender_api, receiver.url_for("hooks.integrator.test"))
    with django_capture_on_commit_callbacks(execute=True):
        make_escrow(client=sender_api.user)
    assert calls == ["hooks.integrator.test", "hooks.integrator.test"]
    assert receiver.count == 1
    assert receiver.requests[0].headers["host"] == f"hooks.integrator.test:{receiver.port}"


@pytest.fixture
def tls_files(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=hooks.integrator.test", "-addext", "subjectAltName=DNS:hooks.integrator.test"],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


@pytest.mark.django_db
def test_https_to_the_pinned_address_uses_the_host_name_for_sni_and_the_certificate(
        sender_api, tls_files, allow_private, monkeypatch, django_capture_on_commit_callbacks):
    cert, _key = tls_files
    monkeypatch.setattr(targets, "resolve", lambda host, port: ["127.0.0.1"])
    monkeypatch.setattr(transport, "ssl_context", lambda: ssl.create_default_context(cafile=cert))
    with WebhookReceiver(tls=tls_files) as receiver:
        secret = register(sender_api, receiver.url_for("hooks.integrator.test"))["secret"]
        wrong = register(sender_api, receiver.url_for("other.integrator.test"))["id"]
        with django_capture_on_commit_callbacks(execute=True):
            make_escrow(client=sender_api.user)
        assert "hooks.integrator.test" in receiver.sni_names
        assert receiver.count == 1
        assert receiver.requests[0].headers["host"] == f"hooks.integrator.test:{receiver.port}"
        receiver.requests[0].verify(secret)
    mismatch = WebhookDelivery.objects.get(endpoint_id=wrong)
    assert mismatch.status == WebhookDelivery.Status.PENDING
    assert mismatch.last_error.startswith("tls_certificate_invalid")


@pytest.mark.django_db
def test_a_slow_receiver_times_out(sender_api, allow_private, settings, django_capture_on_commit_callbacks):
    import socket

    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        register(sender_api, f"http://127.0.0.1:{silent.getsockname()[1]}/hooks")
        with django_capture_on_commit_callbacks(execute=True):
            make_escrow(client=sender_api.user)
    finally:
        silent.close()
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("timeout") and delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.last_duration_ms is not None and delivery.last_duration_ms < 3000


# --- visibility: deliveries, redelivery, admin --------------------------------------------------------


@pytest.mark.django_db
def test_deliveries_list_and_redeliver(sender_api, keyed_client, receiver, allow_private,
                                       django_capture_on_commit_callbacks):
    endpoint_id = register(sender_api, receiver.url)["id"]
    receiver.respond(500, default=200)
    with django_capture_on_commit_callbacks(execute=True):
        make_escrow(client=sender_api.user)
    event = Event.objects.get()
    listed = sender_api.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries").json()
    (row,) = listed["results"]
    assert row["event_id"] == event.pk and row["event_type"] == "escrow.created"
    assert row["status"] == "PENDING" and row["attempt"] == 1 and row["last_status_code"] == 500
    assert row["last_latency_ms"] >= 0 and row["last_error"].startswith("http_status")
    assert row["last_attempt_at"] and row["next_attempt_at"] and row["created_at"]
    assert listed["next"] is None

    with django_capture_on_commit_callbacks(execute=True):
        response = sender_api.post(f"/api/v1/events/{event.pk}/redeliver", {"endpoint_id": endpoint_id}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["event_id"] == event.pk and len(response.json()["deliveries"]) == 1
    assert receiver.ids() == [str(event.pk)] * 2
    succeeded = sender_api.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries", {"status": "SUCCEEDED"}).json()
    assert [d["status"] for d in succeeded["results"]] == ["SUCCEEDED"]
    assert sender_api.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries", {"status": "NOPE"}).status_code == 400

    stranger = keyed_client(["sender"])
    assert stranger.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries").status_code == 404
    assert stranger.post(f"/api/v1/events/{event.pk}/redeliver", {}, format="json").status_code == 404
    register(stranger, receiver.url)
    # The stranger's own endpoint does not make another account's event theirs to send.
    assert stranger.post(f"/api/v1/events/{event.pk}/redeliver", {}, format="json").status_code == 404


@pytest.mark.django_db
def test_redeliver_without_a_matching_endpoint_is_a_conflict(sender_api, receiver, allow_private):
    escrow = make_escrow(client=sender_api.user)
    event = Event.objects.get(object_id=str(escrow.pk))
    response = sender_api.post(f"/api/v1/events/{event.pk}/redeliver", {}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_webhook_endpoint"


@pytest.fixture
def staff_client(db):
    user = get_user_model().objects.create_superuser(email="ops-webhooks@example.test", password="x" * 20)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_lists_deliveries_and_redelivers_through_the_service(staff_client, sender_api, receiver, allow_private,
                                                                   django_capture_on_commit_callbacks):
    secret = register(sender_api, receiver.url)["secret"]
    receiver.respond(500)
    with django_capture_on_commit_callbacks(execute=True):
        make_escrow(client=sender_api.user)
    delivery = WebhookDelivery.objects.get()
    changelist = reverse("admin:webhooks_webhookdelivery_changelist")
    page = staff_client.get(changelist, {"status__exact": "PENDING"})
    assert page.status_code == 200 and b"escrow.created" in page.content
    endpoint_page = staff_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[delivery.endpoint_id]))
    assert endpoint_page.status_code == 200 and secret.encode() not in endpoint_page.content
    assert staff_client.get(reverse("admin:webhooks_webhookdelivery_add")).status_code == 403
    for model in ("webhooks_webhookdelivery", "webhooks_webhookendpoint", "events_event"):
        for term in (str(delivery.event_id), "not-a-number"):
            assert staff_client.get(reverse(f"admin:{model}_changelist"), {"q": term}).status_code == 200

    receiver.respond(200)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(changelist, {"action": "redeliver", "_selected_action": [delivery.pk]}, follow=True)
    assert response.status_code == 200 and b"1 delivery(ies) queued again" in response.content
    assert receiver.count == 2 and len(set(receiver.ids())) == 1
    assert WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SUCCEEDED).count() == 1
    assert AuditLog.objects.get(action="webhook_delivery.redelivery_requested").actor.startswith("staff:")


@pytest.mark.django_db
def test_secrets_never_appear_in_logs_or_audit_rows(sender_api, receiver, allow_private, caplog,
                                                   django_capture_on_commit_callbacks):
    caplog.set_level("DEBUG")
    created = register(sender_api, receiver.url)
    rotated = sender_api.post(f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret").json()
    receiver.respond(500)
    with django_capture_on_commit_callbacks(execute=True):
        make_escrow(client=sender_api.user)
    audit_text = " ".join(str(row.data) for row in AuditLog.objects.all())
    for secret in (created["secret"], rotated["secret"]):
        body = secret.removeprefix("whsec_")
        assert body not in caplog.text and body not in audit_text
        for path in ("/api/v1/webhook-endpoints", f"/api/v1/webhook-endpoints/{created['id']}",
                     f"/api/v1/webhook-endpoints/{created['id']}/deliveries"):
            assert body.encode() not in sender_api.get(path).content
