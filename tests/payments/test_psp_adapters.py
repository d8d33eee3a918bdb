"""PSP adapters: the sandbox, minor units, and the real Stripe SDK against a local fake.

No database: these run under plain pytest and under pytest-django alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
import time
import types
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import stripe
from django.core.exceptions import ImproperlyConfigured

from kobatela.core.errors import DomainError
from kobatela.core.money import currency_exponent, from_minor_units, to_minor_units
from payments import psp
from payments.psp import sandbox
from payments.psp.base import (
    FundingSessionRequest,
    PayoutRequest,
    PayoutResult,
    PspError,
    PspPermanentError,
    PspTransientError,
    payout_idempotency_key,
)
from payments.psp.sandbox import SandboxProvider
from payments.psp.stripe_adapter import StripeProvider, map_stripe_error
from tests.support.fake_stripe import FakeStripe, Reply


def payout(payment_id: int = 7, amount: str = "1250.00", currency: str = "EUR", destination: str = "acct_1Payee", **kw):
    return PayoutRequest(payment_id=payment_id, amount=Decimal(amount), currency=currency, destination=destination, **kw)


def funding(escrow_id: int = 42, amount: str = "12.50", currency: str = "USD", key: str = "fund-42", **kw):
    return FundingSessionRequest(escrow_id=escrow_id, amount=Decimal(amount), currency=currency, idempotency_key=key, **kw)


# --- Minor units -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("0.01", "EUR", 1),
        ("1250", "eur", 125000),
        ("1500.50", "CDF", 150050),  # CDF keeps two decimals at the PSP
        ("1500", "XOF", 1500),  # zero-decimal
        ("1500.00", "XOF", 1500),  # trailing zeros lose nothing
        ("25000", "XAF", 25000),
        ("1.234", "KWD", 1234),  # three-decimal
        ("9999999999999999.99", "USD", 999999999999999999),  # the money field's maximum, exact
    ],
)
def test_to_minor_units(amount, currency, minor):
    assert to_minor_units(Decimal(amount), currency) == minor
    assert from_minor_units(minor, currency) == Decimal(amount)


def test_currency_exponents():
    assert [currency_exponent(c) for c in ("USD", "EUR", "CDF", "XOF", "XAF", "xof")] == [2, 2, 2, 0, 0, 0]
    assert from_minor_units(1500, "XOF") == Decimal("1500")
    assert str(from_minor_units(1234, "USD")) == "12.34"


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1500.50", "XOF"), ("0.5", "XAF"), ("1.005", "USD"), ("10.001", "CDF"), ("1.2345", "KWD")],
)
def test_to_minor_units_refuses_to_lose_precision(amount, currency):
    with pytest.raises(ValueError, match="without losing precision"):
        to_minor_units(Decimal(amount), currency)


def test_to_minor_units_refuses_floats_and_nonsense():
    with pytest.raises(TypeError):
        to_minor_units(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_minor_units(True, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_minor_units(Decimal("NaN"), "USD")
    with pytest.raises(ValueError):
        to_minor_units(Decimal("Infinity"), "USD")
    with pytest.raises(ValueError):
        to_minor_units(Decimal("1"), "US")
    with pytest.raises(TypeError):
        from_minor_units(12.0, "USD")  # type: ignore[arg-type]


# --- Requests, results, errors --------------------------------------------------------


def test_payout_request_always_carries_payout_id_key():
    assert payout_idempotency_key(42) == "payout-42"
    req = payout(payment_id=42, currency="eur")
    assert req.idempotency_key == "payout-42"
    assert req.currency == "EUR"
    assert payout(payment_id=42, idempotency_key="payout-42") == req
    with pytest.raises(ValueError, match="payout-42"):
        payout(payment_id=42, idempotency_key="something-else")
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.amount = Decimal("1")  # type: ignore[misc]
    with pytest.raises(TypeError):
        PayoutRequest(payment_id=1, amount=12.5, currency="USD", destination="acct_1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        payout(amount="0")
    with pytest.raises(ValueError):
        payout(destination=" ")
    with pytest.raises(ValueError):
        PayoutResult(psp_ref="x", status="PAID", raw_status="paid")  # type: ignore[arg-type]


def test_errors_are_narrow_domain_errors():
    transient = PspTransientError("down", provider="stripe", psp_code="api_error", http_status=503)
    permanent = PspPermanentError("no", provider="stripe", psp_code="resource_missing", http_status=404)
    assert isinstance(transient, PspError) and isinstance(transient, DomainError)
    assert (transient.retryable, transient.status, transient.code) == (True, 503, "psp_unavailable")
    assert (permanent.retryable, permanent.status, permanent.code) == (False, 502, "psp_refused")
    assert permanent.details == {"provider": "stripe", "psp_code": "resource_missing", "retryable": False}


# --- Sandbox ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_sandbox_and_providers():
    sandbox.reset()
    psp.reset_providers()
    yield
    sandbox.reset()
    psp.reset_providers()


def test_sandbox_payout_is_deterministic_and_idempotent():
    provider = SandboxProvider()
    first = provider.create_payout(payout(payment_id=7))
    again = SandboxProvider().create_payout(payout(payment_id=7))  # another instance, same "PSP"
    other = provider.create_payout(payout(payment_id=8))

    expected_ref = "sbx_po_" + hashlib.sha256(b"payout-7").hexdigest()[:16]
    assert first == again == PayoutResult(psp_ref=expected_ref, status="SENT", raw_status="sent")
    assert other.psp_ref != first.psp_ref
    records = sandbox.recorded_payouts()
    assert set(records) == {"payout-7", "payout-8"}
    assert records["payout-7"].calls == 2
    assert sandbox.payout_create_count("payout-7") == 1

    sandbox.reset()  # a new process: the record is gone, the reference is not
    assert provider.create_payout(payout(payment_id=7)).psp_ref == expected_ref


def test_sandbox_pays_once_under_20_concurrent_threads():
    provider = SandboxProvider()
    barrier = threading.Barrier(20)
    results: list[PayoutResult] = []
    errors: list[BaseException] = []

    def send():
        try:
            barrier.wait(timeout=5)
            results.append(provider.create_payout(payout(payment_id=99)))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)

    assert errors == []
    assert len(results) == 20 and len(set(results)) == 1
    records = sandbox.recorded_payouts()
    assert list(records) == ["payout-99"]
    assert records["payout-99"].calls == 20


def test_sandbox_refuses_a_reused_key_with_other_parameters():
    provider = SandboxProvider()
    provider.create_payout(payout(payment_id=5, amount="10.00"))
    with pytest.raises(PspPermanentError) as err:
        provider.create_payout(payout(payment_id=5, amount="11.00"))
    assert err.value.code == "psp_idempotency_conflict"
    assert sandbox.recorded_payouts()["payout-5"].request.amount == Decimal("10.00")


def test_sandbox_refuses_amounts_a_psp_cannot_take():
    with pytest.raises(PspPermanentError) as err:
        SandboxProvider().create_payout(payout(amount="1500.50", currency="XOF"))
    assert err.value.psp_code == "amount_precision"
    assert sandbox.recorded_payouts() == {}


def test_sandbox_hooks_transient_and_permanent():
    provider = SandboxProvider()
    for _ in range(2):
        with pytest.raises(PspTransientError) as err:
            provider.create_payout(payout(payment_id=1, destination="fail:transient"))
        assert err.value.retryable
    with pytest.raises(PspTransientError):
        provider.create_payout(payout(payment_id=2, destination="fail:transient:acct_1"))
    with pytest.raises(PspPermanentError) as perm:
        provider.create_payout(payout(payment_id=3, destination="fail:permanent"))
    assert not perm.value.retryable
    with pytest.raises(PspPermanentError, match="Unknown sandbox hook"):
        provider.create_payout(payout(payment_id=4, destination="fail:typo"))
    assert sandbox.recorded_payouts() == {}


def test_sandbox_hook_transient_once_recovers_on_retry():
    provider = SandboxProvider()
    req = payout(payment_id=11, destination="fail:transient-once")
    with pytest.raises(PspTransientError):
        provider.create_payout(req)
    assert sandbox.payout_create_count("payout-11") == 0
    result = provider.create_payout(req)
    assert result.status == "SENT"
    assert provider.create_payout(req) == result
    assert sandbox.payout_create_count("payout-11") == 1


def test_sandbox_funding_session_is_deterministic():
    provider = SandboxProvider()
    session = provider.create_funding_session(funding(key="fund-42"))
    assert session.session_id == "sbx_fs_" + hashlib.sha256(b"fund-42").hexdigest()[:16]
    assert session.provider == "sandbox"
    assert (session.amount, session.currency) == (Decimal("12.50"), "USD")
    assert session.client_secret.startswith(session.session_id + "_secret_")
    assert session.redirect_url is None
    assert session.expires_at > datetime.now(timezone.utc)
    assert provider.create_funding_session(funding(key="fund-42")) == session  # same expires_at too
    assert provider.create_funding_session(funding(key="fund-43")).session_id != session.session_id
    with pytest.raises(PspPermanentError):
        provider.create_funding_session(funding(key="fund-42", amount="13.00"))
    with pytest.raises(PspTransientError):
        provider.create_funding_session(funding(key="fund-44", metadata={"sandbox_hook": "fail:transient"}))
    assert set(sandbox.recorded_funding_sessions()) == {"fund-42", "fund-43"}


def test_sandbox_payout_status():
    provider = SandboxProvider()
    ref = provider.create_payout(payout(payment_id=21)).psp_ref
    assert provider.fetch_payout_status(ref).status == "SENT"
    sandbox.set_payout_status(ref, "SETTLED")
    assert provider.fetch_payout_status(ref).status == "SETTLED"
    assert provider.create_payout(payout(payment_id=21)).status == "SETTLED"  # a replay tells the truth
    # Sent by another process: well-formed, unknown here → the sandbox PSP knows it as sent.
    assert provider.fetch_payout_status(sandbox.payout_ref("payout-999")).status == "SENT"
    with pytest.raises(PspPermanentError) as err:
        provider.fetch_payout_status("tr_not_ours")
    assert err.value.psp_code == "resource_missing"


# --- get_provider ----------------------------------------------------------------------------


@pytest.fixture
def fake_settings(monkeypatch):
    """Stand-in for django.conf.settings, so this works with or without pytest-django."""
    import django.conf

    values = types.SimpleNamespace(PSP_PROVIDER="sandbox", STRIPE_API_KEY="")
    monkeypatch.setattr(django.conf, "settings", values)
    return values


def test_get_provider_selects_and_caches(fake_settings):
    provider = psp.get_provider()
    assert isinstance(provider, SandboxProvider)
    assert psp.get_provider() is provider
    assert psp.get_provider(" Sandbox ") is provider

    fake_settings.PSP_PROVIDER = "stripe"
    with pytest.raises(ImproperlyConfigured, match="STRIPE_API_KEY"):
        psp.get_provider()
    fake_settings.STRIPE_API_KEY = "sk_test_x"
    stripe_provider = psp.get_provider()
    assert isinstance(stripe_provider, StripeProvider) and stripe_provider.name == "stripe"
    assert psp.get_provider("stripe") is stripe_provider

    fake_settings.PSP_PROVIDER = "paypal"
    with pytest.raises(ImproperlyConfigured, match="paypal"):
        psp.get_provider()


# --- Stripe, through the real SDK, against a local fake ----------------------------------


@pytest.fixture
def fake():
    with FakeStripe() as server:
        yield server


def make_stripe(fake: FakeStripe, **kw) -> StripeProvider:
    kw.setdefault("timeout_seconds", 5.0)
    kw.setdefault("retry_wait_seconds", 0.01)
    kw.setdefault("retry_wait_max_seconds", 0.05)
    return StripeProvider("sk_test_fake", api_base=fake.base_url, **kw)


def test_stripe_funding_session_is_a_payment_intent(fake):
    session = make_stripe(fake).create_funding_session(funding(escrow_id=42, amount="12.50", currency="USD", key="fund-42"))

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/payment_intents")
    assert request.headers["Idempotency-Key"] == "fund-42"
    assert request.headers["Authorization"] == "Bearer sk_test_fake"
    assert request.form["amount"] == "1250"
    assert request.form["currency"] == "usd"
    assert request.form["metadata[escrow_id]"] == "42"
    intent = fake.payment_intents[session.session_id]
    assert session.client_secret == intent["client_secret"]
    assert (session.provider, session.amount, session.currency, session.redirect_url) == ("stripe", Decimal("12.50"), "USD", None)
    assert session.expires_at > datetime.now(timezone.utc)


def test_stripe_payout_is_a_transfer_with_payout_id_key(fake):
    result = make_stripe(fake).create_payout(payout(payment_id=7, amount="1250.00", currency="EUR", metadata={"escrow_id": 3}))

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/transfers")
    assert request.headers["Idempotency-Key"] == "payout-7"
    assert request.form["amount"] == "125000"
    assert request.form["currency"] == "eur"
    assert request.form["destination"] == "acct_1Payee"
    assert request.form["transfer_group"] == "payment-7"
    assert request.form["metadata[payment_id]"] == "7"
    assert request.form["metadata[escrow_id]"] == "3"
    assert result == PayoutResult(psp_ref=next(iter(fake.transfers)), status="SENT", raw_status="created")


def test_stripe_zero_decimal_currency(fake):
    make_stripe(fake).create_payout(payout(payment_id=8, amount="25000.00", currency="XOF"))
    assert fake.requests[0].form["amount"] == "25000"
    with pytest.raises(PspPermanentError):
        make_stripe(fake).create_payout(payout(payment_id=9, amount="25000.50", currency="XOF"))
    assert len(fake.requests) == 1  # refused before any request


def test_stripe_retries_a_500_then_succeeds_with_the_same_key(fake):
    fake.script("POST", "/v1/transfers", Reply(status=500))
    result = make_stripe(fake).create_payout(payout(payment_id=7))

    attempts = fake.requests_to("POST", "/v1/transfers")
    assert len(attempts) == 2
    assert {r.headers["Idempotency-Key"] for r in attempts} == {"payout-7"}
    assert list(fake.transfers) == [result.psp_ref]


def test_stripe_gives_up_after_three_500s(fake):
    fake.script("POST", "/v1/transfers", *[Reply(status=500)] * 3)
    with pytest.raises(PspTransientError) as err:
        make_stripe(fake).create_payout(payout(payment_id=7))
    assert err.value.http_status == 500
    assert isinstance(err.value.__cause__, stripe.APIError)
    assert len(fake.requests_to("POST", "/v1/transfers")) == 3
    assert fake.transfers == {}


def test_stripe_rate_limit_is_transient(fake):
    fake.script("POST", "/v1/transfers", Reply(status=429), Reply(status=429))
    make_stripe(fake).create_payout(payout(payment_id=7))
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("status", "sdk_error"),
    [
        (400, stripe.InvalidRequestError),
        (401, stripe.AuthenticationError),
        (402, stripe.CardError),
        (403, stripe.PermissionError),
        (404, stripe.InvalidRequestError),
    ],
)
def test_stripe_client_errors_are_permanent_after_one_attempt(fake, status, sdk_error):
    fake.script("POST", "/v1/transfers", Reply(status=status, message="No such destination."))
    with pytest.raises(PspPermanentError) as err:
        make_stripe(fake).create_payout(payout(payment_id=7))
    assert err.value.http_status == status
    assert not err.value.retryable
    assert isinstance(err.value.__cause__, sdk_error)
    assert len(fake.requests) == 1


def test_stripe_should_retry_header_wins(fake):
    fake.script("POST", "/v1/transfers", Reply(status=500, headers={"Stripe-Should-Retry": "false"}))
    with pytest.raises(PspPermanentError):
        make_stripe(fake).create_payout(payout(payment_id=7))
    assert len(fake.requests) == 1


def test_stripe_slow_server_hits_the_timeout(fake):
    fake.script("POST", "/v1/transfers", *[Reply(status=500, delay=3.0)] * 3)
    provider = make_stripe(fake, timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(PspTransientError) as err:
        provider.create_payout(payout(payment_id=7))
    elapsed = time.monotonic() - started
    assert isinstance(err.value.__cause__, stripe.APIConnectionError)
    assert err.value.http_status is None
    assert len(fake.requests) == 3
    assert elapsed < 2.5, elapsed  # three 0.3 s timeouts, not one 3 s wait


def test_stripe_late_answer_then_retry_pays_once(fake):
    """Stripe made the transfer but answered too late; the retry carries the same key and gets it back."""
    fake.script("POST", "/v1/transfers", Reply(delay=3.0))
    result = make_stripe(fake, timeout_seconds=0.3).create_payout(payout(payment_id=7))

    attempts = fake.requests_to("POST", "/v1/transfers")
    assert len(attempts) == 2
    assert {r.headers["Idempotency-Key"] for r in attempts} == {"payout-7"}
    assert list(fake.transfers) == [result.psp_ref]  # one transfer, not two


def test_stripe_connection_refused_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    provider = StripeProvider("sk_test_fake", api_base=f"http://127.0.0.1:{port}", timeout_seconds=1.0, retry_wait_seconds=0.01)
    with pytest.raises(PspTransientError):
        provider.create_payout(payout(payment_id=7))


def test_stripe_refuses_non_connect_destination_without_a_request(fake):
    with pytest.raises(PspPermanentError) as err:
        make_stripe(fake).create_payout(payout(destination="iban:CD00123"))
    assert err.value.psp_code == "invalid_destination"
    assert fake.requests == []


def test_stripe_fetch_payout_status_maps_reversals(fake):
    provider = make_stripe(fake)
    ref = provider.create_payout(payout(payment_id=7, amount="100.00")).psp_ref

    assert provider.fetch_payout_status(ref) == psp.PayoutStatus(psp_ref=ref, status="SENT", raw_status="created")
    assert (fake.requests[-1].method, fake.requests[-1].path) == ("GET", f"/v1/transfers/{ref}")
    fake.reverse_transfer(ref, amount=2500)
    assert provider.fetch_payout_status(ref).raw_status == "partially_reversed"
    assert provider.fetch_payout_status(ref).status == "SENT"
    fake.reverse_transfer(ref)
    assert provider.fetch_payout_status(ref) == psp.PayoutStatus(psp_ref=ref, status="FAILED", raw_status="reversed")

    before = len(fake.requests)
    with pytest.raises(PspPermanentError) as err:
        provider.fetch_payout_status("tr_missing")
    assert (err.value.http_status, err.value.psp_code) == (404, "resource_missing")
    assert len(fake.requests) == before + 1


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (stripe.APIConnectionError("timeout"), PspTransientError),
        (stripe.RateLimitError("slow down", http_status=429), PspTransientError),
        (stripe.APIError("boom", http_status=503), PspTransientError),
        (stripe.APIError("no status"), PspTransientError),
        (stripe.APIError("conflict", http_status=409, headers={"stripe-should-retry": "true"}), PspTransientError),
        (stripe.InvalidRequestError("bad", param="amount", http_status=400), PspPermanentError),
        (stripe.IdempotencyError("reused", http_status=400), PspPermanentError),
        (stripe.AuthenticationError("key", http_status=401), PspPermanentError),
        (stripe.CardError("declined", param=None, code="card_declined", http_status=402), PspPermanentError),
        (stripe.PermissionError("nope", http_status=403), PspPermanentError),
    ],
)
def test_map_stripe_error(exc, expected):
    mapped = map_stripe_error(exc)
    assert type(mapped) is expected
    assert mapped.provider == "stripe"


# --- refunds (#15): a refund of the funding charge, keyed refund-<id> ---------------------------


def test_refund_request_always_carries_refund_id_key():
    from payments.psp.base import RefundRequest

    assert RefundRequest(refund_id=5, amount=Decimal("1.00"), currency="usd", funding_ref="pi_1").idempotency_key == "refund-5"
    with pytest.raises(ValueError):
        RefundRequest(refund_id=5, amount=Decimal("1.00"), currency="USD", funding_ref="pi_1", idempotency_key="other")


def test_sandbox_refund_is_idempotent_and_refuses_a_changed_request():
    from payments.psp.base import RefundRequest

    provider = SandboxProvider()
    first = provider.create_refund(RefundRequest(refund_id=9, amount=Decimal("40.00"), currency="USD", funding_ref=""))
    again = provider.create_refund(RefundRequest(refund_id=9, amount=Decimal("40.00"), currency="USD", funding_ref=""))
    assert first == again and first.psp_ref.startswith("sbx_re_") and list(sandbox.recorded_refunds()) == ["refund-9"]
    with pytest.raises(PspPermanentError):
        provider.create_refund(RefundRequest(refund_id=9, amount=Decimal("41.00"), currency="USD", funding_ref=""))


def test_stripe_refund_is_a_refund_of_the_payment_intent_with_refund_id_key(fake):
    from payments.psp.base import RefundRequest

    stripe = make_stripe(fake)
    result = stripe.create_refund(RefundRequest(refund_id=12, amount=Decimal("40.00"), currency="EUR",
                                                funding_ref="pi_fund", metadata={"escrow_id": 3}))
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/refunds")
    assert request.headers["Idempotency-Key"] == "refund-12"
    assert (request.form["payment_intent"], request.form["amount"]) == ("pi_fund", "4000")
    assert request.form["metadata[refund_id]"] == "12" and request.form["metadata[escrow_id]"] == "3"
    assert (result.psp_ref, result.raw_status) == (next(iter(fake.refunds)), "pending")
    with pytest.raises(PspPermanentError):  # funded through the API, not a PaymentIntent: refused before any request
        stripe.create_refund(RefundRequest(refund_id=13, amount=Decimal("1.00"), currency="EUR", funding_ref=""))
    assert len(fake.requests) == 1
