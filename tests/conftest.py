from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass

import pgtrigger
import pytest
from django.test import TransactionTestCase
from rest_framework.test import APIClient

from kobatela.accounts.models import ApiKey, User
from kobatela.accounts.services import api_key_create
from kobatela.core import roles
from tests.factories import UserFactory

APPEND_ONLY_TRUNCATE_TRIGGERS = ("audit.AuditLog:auditlog_no_truncate", "audit.AuditSeal:auditseal_no_truncate",
                                  "audit.AuditCheckpoint:auditcheckpoint_no_truncate")


@pytest.fixture(scope="session")
def _database_owner_for_setup():
    """The test database is created and migrated by the owner role (as `manage.py
    migrate` is in production), which also grants the application role its
    privileges (kobatela.core.roles)."""
    from django.db import connection

    owner = roles.owner_credentials()
    saved = {key: connection.settings_dict.get(key) for key in (owner or {})}
    if owner:
        connection.close()
        connection.settings_dict.update(owner)
    yield owner, saved


@pytest.fixture(scope="session")
def django_db_setup(_database_owner_for_setup, django_db_setup, django_db_blocker):
    """Then the tests run as the application role (DATABASE_URL), as the app does in
    production; the owner again for dropping the database at the end."""
    from django.db import connection

    owner, app = _database_owner_for_setup
    if owner:
        with django_db_blocker.unblock():
            connection.close()
        connection.settings_dict.update(app)
    yield
    if owner:
        with django_db_blocker.unblock():
            connection.close()
        connection.settings_dict.update(owner)


@pytest.fixture(scope="session", autouse=True)
def _allow_test_database_flush():
    """Transactional tests end with Django flushing the test database, which
    TRUNCATEs every table: the application role may not, and the append-only
    tables' triggers refuse it. Only that flush runs as the owner, under
    pgtrigger's ignore for those triggers; the refusals themselves are tested
    on raw connections (tests/audit)."""
    original = TransactionTestCase._fixture_teardown

    def teardown_with_flush_allowed(self):
        with _client_side_binding(), roles.as_owner(), pgtrigger.ignore(*APPEND_ONLY_TRUNCATE_TRIGGERS):
            return original(self)

    TransactionTestCase._fixture_teardown = teardown_with_flush_allowed
    yield
    TransactionTestCase._fixture_teardown = original


@contextmanager
def _client_side_binding():
    """The next connection binds parameters on the client: ``pgtrigger.ignore``
    puts a ``set_config()`` before each statement, two commands in one text,
    which a server-side bound (prepared) statement may not hold."""
    from django.db import connection

    options = connection.settings_dict["OPTIONS"]
    saved = options.get("server_side_binding")
    options["server_side_binding"] = False
    try:
        yield
    finally:
        options["server_side_binding"] = saved


@pytest.fixture(autouse=True)
def _empty_audit_checkpoint_sink():
    """Each test starts with an empty external sink of audit checkpoints: those of a
    test whose rows were rolled back would not match the next test's chain."""
    from django.conf import settings

    directory = settings.AUDIT_CHECKPOINT_DIR  # read now: a test may swap the settings object
    yield
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True)
def _books_balance_after_every_test(request):
    """Every test that touches the database ends with the books reconciled:
    whatever it did through the services, ledger, escrows, payments and
    mandates still agree. Tests that break the books on purpose say so with
    ``@pytest.mark.no_reconcile`` (and why)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or request.node.get_closest_marker("no_reconcile"):
        yield
        return
    transactional = marker.kwargs.get("transaction", False) or (marker.args and marker.args[0])
    request.getfixturevalue("transactional_db" if transactional else "db")
    yield
    from payments.reconcile import reconcile

    assert reconcile() == [], "the books no longer reconcile after this test"


@pytest.fixture
def ai_server(settings):
    """The AI advisor on, the real openai client pointed at a local
    OpenAI-compatible server answering a low-risk verdict; the breaker and
    daily-cap state it leaves in Redis is cleared afterwards."""
    import json

    import redis

    from tests.support.openai_server import LOW_RISK, OpenAIStubServer

    with OpenAIStubServer() as server:
        settings.AI_PROOF_ADVISOR_ENABLED = True
        settings.OPENAI_API_KEY = "sk-test-local"
        settings.OPENAI_BASE_URL = server.base_url
        settings.AI_TIMEOUT_SECONDS = 2.0
        server.set_reply(json.dumps(LOW_RISK))
        yield server
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in [*client.scan_iter("kobatela:cb:*"), *client.scan_iter("kobatela:cap:*")]:
        client.delete(key)


@dataclass
class KeyedClient:
    """An APIClient that sends one API key, with the key and its account at hand."""

    client: APIClient
    user: User
    api_key: ApiKey
    plaintext: str

    def __getattr__(self, name):
        return getattr(self.client, name)


def _keyed_client(scopes, user=None, **kwargs) -> KeyedClient:
    user = user or UserFactory()
    api_key, plaintext = api_key_create(actor="system:test", user=user, name="test", scopes=list(scopes), **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return KeyedClient(client=client, user=user, api_key=api_key, plaintext=plaintext)


@pytest.fixture
def keyed_client(db):
    """Factory: ``keyed_client(["sender"])`` → a client authenticated with a new key."""
    return _keyed_client


@pytest.fixture
def admin_api(db) -> KeyedClient:
    return _keyed_client(["admin"])


@pytest.fixture
def support_api(db) -> KeyedClient:
    return _keyed_client(["support"])


@pytest.fixture
def sender_api(db) -> KeyedClient:
    return _keyed_client(["sender"])


@pytest.fixture
def provider_api(db) -> KeyedClient:
    return _keyed_client(["provider"])


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The contract's error shape, with the status and (optionally) the code."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["request_id"] == response["X-Request-ID"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
def clean_sandbox():
    """The sandbox PSP remembers the payouts and refunds it was asked for, per
    process: each test that uses it starts and ends with an empty one."""
    from payments.psp import sandbox

    sandbox.reset()
    yield sandbox
    sandbox.reset()


@pytest.fixture
def psp_sandbox(monkeypatch, clean_sandbox):
    """A clean sandbox PSP whose signed webhooks the app accepts (``tests.support.psp``)."""
    from tests.support.psp import SECRET

    monkeypatch.setenv("PSP_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("PSP_WEBHOOK_SECRET_NEXT", raising=False)
    return clean_sandbox


@pytest.fixture
def broker():
    """A private Redis as the Celery broker, started; ``broker.stop()`` is the outage."""
    from tests.support.broker import RedisServer, celery_broker

    server = RedisServer()
    server.start()
    try:
        with celery_broker(server.url):
            yield server
    finally:
        server.close()


@pytest.fixture
def fake_stripe(settings):
    """The Stripe adapter as the PSP, talking to the local fake Stripe (tests/support/fake_stripe.py)."""
    from payments.psp import reset_providers
    from tests.support.fake_stripe import FakeStripe

    with FakeStripe() as fake:
        settings.PSP_PROVIDER = "stripe"
        settings.STRIPE_API_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.base_url
        reset_providers()
        yield fake
    reset_providers()
