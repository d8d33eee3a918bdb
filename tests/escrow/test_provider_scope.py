"""The ``provider`` scope: a provider's key sees and acts on the escrows it provides, and nothing else."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLResolver, get_resolver

from escrow.disputes import dispute_open
from escrow.models import Dispute, EscrowAgreement, EscrowStatus, Refund
from kobatela.accounts.models import ApiKey, User
from kobatela.events.models import Event
from payments.models import Payment, Transaction
from proofs.models import Proof, UploadLink
from spend.models import Purchase, UsageMandate
from tests.conftest import assert_error
from tests.factories import UserFactory, actor_for
from tests.providers.world import clean_photo, doubtful_photo, photo_escrow, tenant_escrow
from tests.spend.builders import make_mandate
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

NEVER_AN_ID = "999999999999"


# --- the URLconf, enumerated: every API route that takes an id -------------------------


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.callback


def id_routes() -> list[tuple[str, str, str]]:
    """(method, path template with ``{id}``, resource prefix) for every API route with an id in its path."""
    routes = []
    for regex, callback in _walk(get_resolver().url_patterns):
        if not regex.startswith("api/v1/"):
            continue
        groups = re.findall(r"\(\?P<(\w+)>", regex)
        if not any(g == "pk" or g.endswith("_id") for g in groups):
            continue  # /u/{token} and signed file URLs carry credentials, not ids (tested in tests/proofs)
        path = "/" + re.sub(r"\(\?P<\w+>[^)]*\)", "{id}", regex.replace("^", "").replace("$", ""))
        actions = getattr(callback, "actions", None)
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        # DRF adds "head" to a viewset's actions at its first GET (a HEAD is a GET): leave it out,
        # so that the list does not depend on what ran before.
        methods = [m for m in actions if m != "head"] if actions else [
            m for m in ("get", "post", "patch", "delete") if hasattr(view_class, m)]
        prefix = path.removeprefix("/api/v1/").split("/{id}")[0]
        routes += [(method.upper(), path, prefix) for method in methods]
    return routes


# Which rows each route's id names, and which of them are the provider's own (its escrows').
# A new route with an id must be added here: the sweep refuses to skip it.
def _resources(provider: User) -> dict[str, tuple[type, object]]:
    own_escrows = EscrowAgreement.objects.filter(provider=provider)
    return {
        "escrows": (EscrowAgreement, own_escrows),
        "provider/escrows": (EscrowAgreement, own_escrows),
        "proofs": (Proof, Proof.objects.filter(escrow__provider=provider)),
        "payments": (Payment, Payment.objects.filter(escrow__provider=provider)),
        "upload-links": (UploadLink, UploadLink.objects.filter(escrow__provider=provider)),
        "disputes": (Dispute, Dispute.objects.filter(escrow__provider=provider)),
        "refunds": (Refund, Refund.objects.none()),
        "users": (User, User.objects.none()),
        "apikeys": (ApiKey, ApiKey.objects.none()),
        "transactions": (Transaction, Transaction.objects.none()),
        "mandates": (UsageMandate, UsageMandate.objects.none()),
        "spend/purchases": (Purchase, Purchase.objects.none()),
        "events": (Event, Event.objects.none()),
        "webhook-endpoints": (WebhookEndpoint, WebhookEndpoint.objects.none()),
    }


# A body every write route of the sweep accepts (unknown fields are ignored), so that what
# answers is the lookup of the id, not the validation of an empty body.
PROBE_BODY = {"reason": "BOLA probe", "body": "BOLA probe"}


def _call(api, method: str, path: str):
    headers = {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}
    if method == "GET":
        return api.get(path, **headers)
    return getattr(api, method.lower())(path, PROBE_BODY, format="json", **headers)


def _answer(response) -> tuple[int, str | None]:
    code = None
    if (response.get("Content-Type", "").startswith("application/json") and response.status_code >= 400
            and response.content):
        code = response.json()["error"]["code"]
    return response.status_code, code


def test_bola_sweep_a_provider_key_reaches_only_its_own_escrows(keyed_client):
    provider_api = keyed_client(["provider"])
    me = provider_api.user
    own = tenant_escrow(provider=me)
    other = tenant_escrow()  # another client, another provider, with a dispute
    tenant_escrow(client=me)  # the provider's account as a client: a provider key does not see it either
    make_mandate()
    for tenant in (own, other):  # disputes opened by the clients: the provider's own, and another's
        dispute_open(actor=actor_for(tenant.escrow.client), escrow_id=tenant.escrow.pk, reason="late")
    resources = _resources(me)
    routes = id_routes()
    assert ("POST", "/api/v1/escrows/{id}/mark-delivered", "escrows") in routes
    assert ("GET", "/api/v1/provider/escrows/{id}", "provider/escrows") in routes

    answered_own = set()
    for method, path, prefix in routes:
        assert prefix in resources, f"{method} {path}: add its resource to _resources() so the sweep covers it"
        model, own_rows = resources[prefix]
        own_ids = set(own_rows.values_list("pk", flat=True))
        missing = _answer(_call(provider_api, method, path.replace("{id}", NEVER_AN_ID)))
        assert missing[0] in (403, 404, 405), (method, path, missing)
        for foreign_id in model.objects.exclude(pk__in=own_ids).values_list("pk", flat=True):
            # Another tenant's id answers exactly as an id that does not exist: nothing to probe.
            assert _answer(_call(provider_api, method, path.replace("{id}", str(foreign_id)))) == missing, \
                (method, path, foreign_id)
        for own_id in own_ids:
            status, _ = _answer(_call(provider_api, method, path.replace("{id}", str(own_id))))
            if missing[0] == 404:  # the provider may use this route: its own rows answer
                assert status != 404, (method, path, own_id)
                answered_own.add((method, path))
            else:
                assert status == missing[0], (method, path, own_id)
    # What the provider may reach, it reaches; and only that.
    assert answered_own == {
        ("GET", "/api/v1/provider/escrows/{id}"),
        ("POST", "/api/v1/escrows/{id}/mark-delivered"),
        ("GET", "/api/v1/proofs/{id}/file-url"),
        ("POST", "/api/v1/escrows/{id}/disputes"),
        ("GET", "/api/v1/disputes/{id}"),
        ("POST", "/api/v1/disputes/{id}/messages"),
        ("POST", "/api/v1/disputes/{id}/withdraw"),
    }
    own.escrow.refresh_from_db()


def test_provider_inbox_lists_only_provided_escrows_without_client_data(keyed_client):
    provider_api = keyed_client(["provider"])
    mine = photo_escrow(provider=provider_api.user)
    photo_escrow(client=provider_api.user)  # as a client: not in the provider inbox
    photo_escrow()
    body = provider_api.get("/api/v1/provider/escrows").json()
    assert [e["id"] for e in body["results"]] == [mine.pk]
    read = provider_api.get(f"/api/v1/provider/escrows/{mine.pk}").json()
    assert "client_id" not in read and read["provider_id"] == provider_api.user.pk
    assert read["allowed_actions"] == ["mark_delivered", "submit_proof", "dispute"]
    assert provider_api.get("/api/v1/provider/escrows?status=DRAFT").json()["results"] == []
    assert_error(provider_api.get("/api/v1/provider/escrows?status=nope"), 400)


def test_provider_submits_proofs_and_marks_delivered_on_its_own_escrows_only(keyed_client):
    provider_api = keyed_client(["provider"])
    mine = photo_escrow(provider=provider_api.user)
    theirs = photo_escrow()

    def upload(escrow, photo):
        return provider_api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO",
                                                    "file": photo}, format="multipart")

    assert_error(upload(theirs, doubtful_photo()), 404, "escrow_not_found")
    response = upload(mine, doubtful_photo())
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "PENDING"
    assert upload(mine, clean_photo()).json()["status"] == "APPROVED"
    assert_error(provider_api.post(f"/api/v1/escrows/{theirs.pk}/mark-delivered", {}, format="json"), 404)
    other = photo_escrow(provider=provider_api.user)
    response = provider_api.post(f"/api/v1/escrows/{other.pk}/mark-delivered", {"note": "done"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == EscrowStatus.RELEASABLE


def test_provider_cannot_fund_decide_approve_or_read_client_routes(keyed_client):
    provider_api = keyed_client(["provider"])
    draft = photo_escrow(provider=provider_api.user, funded=False)
    mine = tenant_escrow(provider=provider_api.user)
    proof = Proof.objects.filter(escrow=mine.escrow).first()
    for path in (f"/api/v1/escrows/{draft.pk}/deposit", f"/api/v1/escrows/{draft.pk}/funding-session",
                 f"/api/v1/escrows/{mine.escrow.pk}/client-approve", f"/api/v1/escrows/{mine.escrow.pk}/client-reject",
                 f"/api/v1/proofs/{proof.pk}/decision", f"/api/v1/escrows/{mine.escrow.pk}/upload-links"):
        assert_error(provider_api.post(path, {"amount": "1.00"}, format="json",
                                       HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex), 403)
    for path in (f"/api/v1/escrows/{mine.escrow.pk}", "/api/v1/escrows", f"/api/v1/users/{mine.escrow.client_id}",
                 f"/api/v1/proofs/{proof.pk}", "/api/v1/payments"):
        assert_error(provider_api.get(path), 403)


def test_a_sender_key_still_sees_only_its_own_escrows(sender_api):
    other = UserFactory()
    as_provider = photo_escrow(client=other, provider=sender_api.user)
    assert_error(sender_api.get(f"/api/v1/escrows/{as_provider.pk}"), 404)
    assert_error(sender_api.post(f"/api/v1/escrows/{as_provider.pk}/mark-delivered", {}, format="json"), 404)
