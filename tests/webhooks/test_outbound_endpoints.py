"""Webhook endpoints over the API, and the URL policy applied when one is registered."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from kobatela.audit.models import AuditLog
from kobatela.events.catalogue import EVENT_TYPES
from tests.conftest import assert_error
from tests.factories import make_escrow
from webhooks import targets
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhook-endpoints"
PUBLIC = "https://93.184.215.14/kobatela/hooks"  # an IP literal: no DNS needed in tests


def create(api, **body):
    return api.post(URL, {"url": PUBLIC, **body}, format="json")


# --- lifecycle ------------------------------------------------------------------------------------


def test_create_shows_the_secret_once(sender_api):
    response = create(sender_api, event_types=["escrow.funded", "payment.settled", "escrow.funded"],
                      description="prod")
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert body["url"] == PUBLIC and body["description"] == "prod" and body["status"] == "ENABLED"
    assert body["event_types"] == ["escrow.funded", "payment.settled"]  # duplicates dropped
    assert body["previous_secret_expires_at"] is None

    shown = sender_api.get(f"{URL}/{body['id']}")
    assert shown.status_code == 200 and "secret" not in shown.json()
    assert secret.encode() not in shown.content and secret.encode() not in sender_api.get(URL).content
    assert [e["id"] for e in sender_api.get(URL).json()["results"]] == [body["id"]]
    created = AuditLog.objects.get(action="webhook_endpoint.created")
    assert secret not in str(created.data) and created.data["fingerprint"]


def test_each_endpoint_gets_its_own_secret(sender_api):
    assert create(sender_api).json()["secret"] != create(sender_api).json()["secret"]


def test_event_types_are_validated(sender_api):
    error = assert_error(create(sender_api, event_types=["escrow.funded", "escrow.teleported"]), 400, "validation_error")
    assert "event_types" in error["details"]
    assert_error(create(sender_api, event_types="escrow.funded"), 400, "validation_error")
    assert create(sender_api, event_types=[]).json()["event_types"] == []  # empty: every type
    assert create(sender_api, event_types=sorted(EVENT_TYPES)).status_code == 201


def test_rotate_returns_a_new_secret_once_and_keeps_the_old_one_for_24_hours(sender_api):
    created = create(sender_api).json()
    rotated = sender_api.post(f"{URL}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.content
    assert rotated.json()["secret"] != created["secret"] and rotated.json()["previous_secret_expires_at"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == rotated.json()["secret"] and endpoint.previous_secret == created["secret"]
    assert rotated.json()["secret"].encode() not in sender_api.get(f"{URL}/{created['id']}").content


def test_delete_stops_deliveries_and_hides_the_endpoint(sender_api):
    created = create(sender_api).json()
    make_escrow(client=sender_api.user)  # a PENDING delivery (its task is not run here)
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING
    assert sender_api.delete(f"{URL}/{created['id']}").status_code == 204
    assert_error(sender_api.get(f"{URL}/{created['id']}"), 404)
    assert_error(sender_api.delete(f"{URL}/{created['id']}"), 404)
    assert sender_api.get(URL).json()["results"] == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.last_error == "endpoint_deleted"
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.status == WebhookEndpoint.Status.DELETED and endpoint.secret == ""
    make_escrow(client=sender_api.user)
    assert WebhookDelivery.objects.count() == 1


def test_tenancy_and_scopes(sender_api, keyed_client, support_api, admin_api, anon_api):
    created = create(sender_api).json()
    other = keyed_client(["sender"])
    for method, path in (("get", f"{URL}/{created['id']}"), ("delete", f"{URL}/{created['id']}"),
                         ("post", f"{URL}/{created['id']}/rotate-secret"), ("post", f"{URL}/{created['id']}/enable"),
                         ("get", f"{URL}/{created['id']}/deliveries")):
        assert_error(getattr(other, method)(path), 404)
    assert other.get(URL).json()["results"] == []
    assert support_api.get(f"{URL}/{created['id']}").status_code == 200  # support reads all
    assert [e["id"] for e in admin_api.get(URL).json()["results"]] == [created["id"]]
    assert_error(create(support_api), 403)  # only an integrator registers its endpoints
    assert_error(support_api.delete(f"{URL}/{created['id']}"), 403)
    assert_error(anon_api.get(URL), 401)
    assert_error(keyed_client(["gov"]).get(URL), 403)


def test_endpoints_per_account_are_limited(sender_api, settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_ACCOUNT = 2
    assert create(sender_api).status_code == 201
    second = create(sender_api).json()
    assert_error(create(sender_api), 409, "webhook_endpoint_limit")
    sender_api.delete(f"{URL}/{second['id']}")
    assert create(sender_api).status_code == 201


def test_create_is_idempotent_with_a_key(sender_api):
    first = sender_api.post(URL, {"url": PUBLIC}, format="json", HTTP_IDEMPOTENCY_KEY="ep-1")
    again = sender_api.post(URL, {"url": PUBLIC}, format="json", HTTP_IDEMPOTENCY_KEY="ep-1")
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert WebhookEndpoint.objects.count() == 1


# --- URL policy at registration ------------------------------------------------------------------


@pytest.mark.parametrize("url, kind", [
    ("https://localhost/hooks", "loopback"),  # a name resolving to 127.0.0.1 / ::1
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://[::1]/hooks", "loopback"),
    ("https://2130706433/hooks", "loopback"),  # 127.0.0.1 written as one number
    ("https://[::ffff:127.0.0.1]/hooks", "loopback"),  # IPv4-mapped IPv6
    ("https://10.1.2.3/hooks", "private"),
    ("https://192.168.0.10:8443/hooks", "private"),
    ("https://100.64.0.1/hooks", "private"),  # carrier-grade NAT
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("https://100.100.100.200/", "metadata"),
    ("https://169.254.10.1/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://224.0.0.1/", "multicast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://0.0.0.0/", "unspecified"),
])
def test_forbidden_addresses_are_refused_at_registration(sender_api, url, kind):
    error = assert_error(create(sender_api, url=url), 400, "webhook_url_forbidden")
    assert kind.split("-")[0] in error["message"] and error["details"]["url"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["https://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/",
                                 "https://169.254.1.1/", "https://224.0.0.251/"])
def test_metadata_link_local_and_multicast_stay_refused_even_when_private_targets_are_allowed(
        sender_api, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert_error(create(sender_api, url=url), 400, "webhook_url_forbidden")


def test_private_targets_setting_allows_loopback_and_http(sender_api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert create(sender_api, url="http://localhost:8080/hooks").status_code == 201
    assert create(sender_api, url="https://10.1.2.3/hooks").status_code == 201


def test_http_is_refused_unless_debugging(sender_api, settings):
    assert_error(create(sender_api, url="http://93.184.215.14/hooks"), 400, "webhook_url_insecure")
    settings.DEBUG = True
    assert create(sender_api, url="http://93.184.215.14/hooks").status_code == 201


@pytest.mark.parametrize("url", ["ftp://93.184.215.14/x", "https://user:pass@93.184.215.14/x", "not a url",
                                 "https:///nohost", "//93.184.215.14/x", "https://93.184.215.14:99999/x",
                                 "https://93.184.215.14/x#frag", "https://" + "a" * 2100 + ".test/"])
def test_malformed_urls_are_refused(sender_api, url):
    response = create(sender_api, url=url)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("webhook_url_invalid", "validation_error")


def test_a_name_is_checked_on_every_address_it_resolves_to(sender_api, monkeypatch):
    answers = {"hooks.integrator.test": ["93.184.215.14", "10.0.0.1"]}
    monkeypatch.setattr(targets, "resolve", lambda host, port: answers[host])
    assert_error(create(sender_api, url="https://hooks.integrator.test/k"), 400, "webhook_url_forbidden")
    answers["hooks.integrator.test"] = ["93.184.215.14", "2606:4700::6810:84e5"]
    assert create(sender_api, url="https://hooks.integrator.test/k").status_code == 201


def test_a_name_that_does_not_resolve_yet_is_accepted_and_checked_at_delivery(sender_api, monkeypatch):
    import socket

    def nxdomain(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(targets, "resolve", nxdomain)
    assert create(sender_api, url="https://hooks.not-live-yet.test/k").status_code == 201
    with pytest.raises(targets.TargetError) as caught:
        targets.target_for_delivery("https://hooks.not-live-yet.test/k")
    assert caught.value.code == "webhook_dns_error"


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe"])
def test_ipv4_embedded_in_ipv6_is_checked_as_ipv4(address):
    # NAT64 of 10.0.0.1, 6to4 of 10.0.0.1, Teredo whose client is 10.0.0.1 (obfuscated as ~address).
    refusal = targets.address_refusal(ipaddress.ip_address(address), private_allowed=False)
    assert refusal is not None, address


def test_the_production_check_refuses_private_targets(settings):
    from webhooks.checks import webhook_targets_check

    settings.IS_PRODUCTION = True
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert [e.id for e in webhook_targets_check(None)] == ["webhooks.E001"]
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    assert webhook_targets_check(None) == []
