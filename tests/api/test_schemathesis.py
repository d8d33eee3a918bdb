"""Schemathesis against the WSGI app: every operation of the schema the app
serves (``/api/v1/schema/``), every check, once with an admin key and once
with a sender key.

Bounded and deterministic so it fits in ``make test``: ``MAX_EXAMPLES``
generated cases per operation (plus Schemathesis's coverage cases: boundary
values, missing fields, undeclared methods, wrong content types), a fixed
seed, derandomized generation, no example database. A failure prints the
request to replay it.

The database holds real objects of the key's account (built through the
services), and every other positive case of an operation with an ``{id}``
aims at one of them, so that both "found" and "not found" answers are checked.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import uuid
from decimal import Decimal

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation

from escrow import services as escrow_services
from escrow.selectors import escrow_lock
from kobatela.accounts.services import api_key_create
from kobatela.events.models import Event
from payments.transactions import services as transactions
from proofs.services import proof_submit
from spend import services as spend
from tests.factories import UserFactory, actor_for, fund, make_escrow
from tests.proofs.invoice_samples import SAMPLES, render_pdf
from tests.spend.builders import make_mandate, make_merchant
from webhooks import targets
from webhooks.outbound.endpoints import endpoint_create

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 20
SEED = 13

# Operations whose bodies follow rules JSON Schema cannot state (a date in the
# future, fields that must agree, an account that exists), refused with 400 as
# API.md says. For these alone a schema-valid body may be refused with 400;
# every other check runs on them unchanged.
RULES_BEYOND_THE_SCHEMA = {
    ("POST", "/api/v1/allowlist"): "the recipient is not the owner",
    ("POST", "/api/v1/apikeys"): "user_id names an active account (400, API.md); expires_at is in the future",
    ("POST", "/api/v1/escrows"): "deadline_at is in the future; the provider is not the client; the milestone "
                                 "amounts add up to amount_total",
    ("POST", "/api/v1/escrows/{id}/disputes"): "milestone_idx names a milestone of this escrow",
    ("POST", "/api/v1/disputes/{id}/resolve"): "release_amount + refund_amount = the dispute's amount_held",
    ("POST", "/api/v1/proofs/{id}/decision"): "a partial approval's amount is below the milestone's, with a note",
    ("POST", "/api/v1/mandates"): "expires_at is in the future, after starts_at; the beneficiary is not the sender",
    ("POST", "/api/v1/proofs"): "the file is a readable image or PDF, of a type the proof type accepts",
    ("POST", "/api/v1/spend/allow"): "exactly one of merchant_id and category_id",
    ("POST", "/api/v1/spend/purchases"): "the currency is the mandate's",
    ("POST", "/api/v1/transactions"): "the receiver is not the sender",
    ("POST", "/api/v1/webhook-endpoints"): "a valid host and port, no credentials or fragment, public addresses",
    # The provider webhooks: a valid request is signed over its own body with a
    # secret, in headers the provider sets; no generator can produce one.
    ("POST", "/api/v1/psp/webhook"): "signed by the PSP (webhook-id, webhook-timestamp, webhook-signature)",
    ("POST", "/api/v1/psp/stripe/webhook"): "signed by Stripe (Stripe-Signature)",
}


def _config() -> schemathesis.Config:
    positive_with_400 = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # PostgreSQL text cannot hold NUL, and DRF's CharField refuses it
            # (400); JSON Schema has no way to say so short of a pattern on
            # every string.
            "allow-x00": False,
        },
        "operations": [
            {"include-name": f"{method} {path}",
             "checks": {"positive_data_acceptance": {"expected-statuses": positive_with_400}}}
            for method, path in RULES_BEYOND_THE_SCHEMA
        ],
    })


schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application(), config=_config())


# --- the account's objects ------------------------------------------------------


class Seeds:
    """Objects of the key's account that the API addresses by id, built through
    the services the first time an operation on that resource asks for them."""

    def __init__(self, api) -> None:
        self.user, self.actor = api.user, actor_for(api.user)
        # A provider key's objects are the escrows its account provides (it sees no other).
        self.as_provider = "provider" in api.api_key.scopes
        self._ids: dict[str, list[int]] = {}

    def ids(self, resource: str) -> list[int]:
        if resource not in self._ids:
            build = getattr(self, "_" + resource.replace("-", "_"), None)
            self._ids[resource] = build() if build else []
        return self._ids[resource]

    def _users(self):
        return [self.user.pk, UserFactory().pk]

    def _apikeys(self):
        spare, _ = api_key_create(actor="system:test", user=self.user, name="spare", scopes=["sender"])
        return [spare.pk]  # never the test's own key: DELETE revokes it

    def _party(self) -> dict:
        return {"provider": self.user} if self.as_provider else {"client": self.user}

    def _escrows(self):
        return [make_escrow(**self._party()).pk, fund(make_escrow(**self._party(), amounts=("60.00", "40.00"))).pk]

    def _provider(self):  # /provider/escrows/{id}
        return self._escrows()

    def _events(self):
        make_escrow(client=self.user)
        return list(Event.objects.filter(account_id=self.user.pk).values_list("pk", flat=True)[:2])

    def _proofs(self):
        # An invoice with nothing flagged (no requirements, the AI off): it waits for review, and a
        # decision on it needs no note. (A pending photo always carries the warnings that kept it
        # from paying by itself, so deciding it without a note is refused: 400 note_required.)
        escrow = fund(make_escrow(client=self.user, proof_type="INVOICE"))
        invoice = SimpleUploadedFile("invoice.pdf", render_pdf(SAMPLES[0]), content_type="application/pdf")
        return [proof_submit(actor=self.actor, escrow_id=escrow.pk, milestone_idx=1, proof_type="INVOICE",
                             upload=invoice).pk]

    def _payments(self):
        escrow = fund(make_escrow(client=self.user))
        with transaction.atomic():
            locked = escrow_lock(escrow.pk)
            payment = escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                                        milestone=locked.milestones.get(), reason="seed")
        return [payment.pk]

    def _disputes(self):
        from escrow.disputes import dispute_open

        escrow = fund(make_escrow(client=self.user, amounts=("60.00", "40.00")))
        return [dispute_open(actor=self.actor, escrow_id=escrow.pk, reason="seed").pk]

    def _refunds(self):
        from escrow.refunds import escrow_refund

        escrow = fund(make_escrow(client=self.user))
        return [escrow_refund(actor=self.actor, escrow_id=escrow.pk, amount=Decimal("10.00"), reason="seed").pk]

    def _mandates(self):
        return [make_mandate(sender=self.user).pk]

    def _spend(self):  # /spend/purchases/{id}
        merchant = make_merchant()
        mandate = make_mandate(sender=self.user, merchants=[merchant])
        purchase = spend.purchase_create(actor=self.actor, mandate_id=mandate.pk, merchant_id=merchant.pk,
                                         amount=Decimal("5.00"), currency=mandate.currency,
                                         idempotency_key=uuid.uuid4().hex)
        return [purchase.pk]

    def _transactions(self):
        receiver = UserFactory()
        transactions.allowlist_add(actor="system:test", owner_id=self.user.pk, recipient_id=receiver.pk)
        txn = transactions.transaction_create(actor="system:test", sender_id=self.user.pk, receiver_id=receiver.pk,
                                              amount=Decimal("7.00"), currency="USD",
                                              idempotency_key=uuid.uuid4().hex)
        return [txn.pk]

    def _webhook_endpoints(self):
        endpoint, _ = endpoint_create(actor=self.actor, url="https://hooks.example.test/kobatela", event_types=[])
        return [endpoint.pk]


@pytest.fixture
def keyed(request, monkeypatch):
    """``(api, seeds)``: a key of the requested scope, and its account's objects."""

    def resolve_without_dns(host, port):  # the network is closed: names never resolve here
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise socket.gaierror(f"no DNS in tests: {host}") from None

    monkeypatch.setattr(targets, "resolve", resolve_without_dns)
    # Limits high enough for generated cases (a key makes hundreds of requests a
    # second here); the RateLimit-* headers are still on every response, and checked.
    settings_fixture = request.getfixturevalue("settings")
    settings_fixture.RATE_LIMIT_BURST_PER_SECOND = 100_000
    settings_fixture.RATE_LIMIT_PER_MINUTE = 1_000_000
    # Configured, as in production: without them the provider webhooks answer 503 to everything.
    monkeypatch.setenv("PSP_WEBHOOK_SECRET", "whsec_" + "c2NoZW1hdGhlc2lzLXRlc3Qtc2VjcmV0")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_schemathesis_test")
    # As Django's test client does: a request's end must not close the test's
    # connection (and its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request.addfinalizer(lambda: request_started.connect(close_old_connections))
    request.addfinalizer(lambda: request_finished.connect(close_old_connections))
    api = request.getfixturevalue(f"{request.param}_api")
    return api, Seeds(api)


@pytest.fixture
def turns():
    return itertools.count()


def _aim_at_seeded(case, seeds: Seeds, turn: int) -> None:
    """Every other positive case of an ``{id}`` operation targets a real object."""
    if "id" not in (case.path_parameters or {}) or case.meta.is_negative_at(ParameterLocation.PATH) or turn % 2:
        return
    candidates = seeds.ids(case.operation.path.removeprefix("/api/v1/").split("/")[0])
    if candidates:
        case.path_parameters["id"] = str(candidates[(turn // 2) % len(candidates)])


# The scopes whose keys run every operation: one line per scope (a ``<scope>_api``
# fixture in tests/conftest.py makes the key).
KEYS = ["admin", "sender", "provider"]


@pytest.mark.parametrize("keyed", KEYS, indirect=True)
@schema.parametrize()
# The seeded objects are shared by the examples of one operation, on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api(case, keyed, turns):
    api, seeds = keyed
    _aim_at_seeded(case, seeds, next(turns))
    if case.query and "cursor" in case.query and not case.meta.is_negative_at(ParameterLocation.QUERY):
        # A cursor is an opaque token this API hands out in `next`/`previous`:
        # a made-up one is refused (400), so positive cases go without one.
        del case.query["cursor"]
    if "Idempotency-Key" in (case.headers or {}) and not case.meta.is_negative_at(ParameterLocation.HEADER):
        # A fresh key per request: a generated one repeats across examples, and a
        # repeat with another body is rightly refused (422 idempotency_key_reused).
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(headers={"Authorization": f"Bearer {api.plaintext}"})
