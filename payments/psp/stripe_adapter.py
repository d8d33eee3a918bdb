"""Stripe, through the official SDK's ``StripeClient`` (never the global ``stripe.api_key``).

* Funding: a PaymentIntent (``amount`` in minor units, ``currency`` lowercase,
  ``metadata.escrow_id``) created with the request's idempotency key; the
  client pays it with the ``client_secret`` (Stripe.js / mobile SDK).
  PaymentIntents do not expire at Stripe; ``expires_at`` is when *we* consider
  the session stale (``funding_session_ttl``, 24 h by default).
* Payout: a Transfer to the payee's connected account (``destination`` =
  ``acct_…``) with ``transfer_group = "payment-<id>"``, ``metadata.payment_id``
  and the idempotency key ``payout-<payment id>``. A created transfer is
  ``SENT``; settlement is confirmed by the Stripe webhook.
* Payout status (``fetch_payout_status`` retrieves the Transfer):

  ======================================  ==========  ======================
  Transfer                                status      raw_status
  ======================================  ==========  ======================
  ``reversed: true`` (fully reversed)     ``FAILED``  ``reversed``
  ``amount_reversed > 0``, not reversed   ``SENT``    ``partially_reversed``
  otherwise                               ``SENT``    ``created``
  ======================================  ==========  ======================

Retries are ours, not the SDK's: the SDK runs with ``max_network_retries=0``
and an explicit HTTP timeout (10 s), and each call is wrapped in tenacity —
at most ``max_attempts`` (3) attempts, exponential backoff with jitter
starting at ``retry_wait_seconds``, retrying only :class:`PspTransientError`.
Every attempt of a POST carries the same idempotency key, so a retry after a
timeout whose request did reach Stripe returns the first result instead of
paying again.

Error mapping (an explicit ``Stripe-Should-Retry`` response header wins):

* transient: ``APIConnectionError`` (timeouts, refused connections),
  ``RateLimitError`` (429), ``APIError`` with a 5xx (or no) status;
* permanent: ``InvalidRequestError`` (incl. 404), ``IdempotencyError``,
  ``AuthenticationError``, ``PermissionError``, ``CardError``, anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import stripe
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .base import (
    FundingSession,
    FundingSessionRequest,
    PaymentProvider,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    PspError,
    PspPermanentError,
    PspTransientError,
    RefundRequest,
    RefundResult,
    psp_minor_units,
)

__all__ = ["StripeProvider", "map_stripe_error"]

logger = logging.getLogger(__name__)

PROVIDER_NAME = "stripe"
T = TypeVar("T")

_TRANSIENT_TYPES: tuple[type[stripe.StripeError], ...] = (stripe.APIConnectionError, stripe.RateLimitError)
_PERMANENT_TYPES: tuple[type[stripe.StripeError], ...] = (
    stripe.InvalidRequestError,  # 400 and 404
    stripe.IdempotencyError,
    stripe.AuthenticationError,
    stripe.PermissionError,
    stripe.CardError,
)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value)
    return None


def map_stripe_error(exc: stripe.StripeError) -> PspError:
    """The narrow Kobatela error for a Stripe SDK exception (see the module docstring)."""
    status = exc.http_status
    psp_code = exc.code or (exc.error.type if exc.error is not None else None) or type(exc).__name__
    message = f"Stripe {type(exc).__name__}" + (f" ({status})" if status else "") + f": {exc.user_message or psp_code}"
    message = message[:300]  # stored on Payment.last_error (500 chars)
    kwargs = {"provider": PROVIDER_NAME, "psp_code": psp_code, "http_status": status}

    should_retry = _header(exc.headers, "stripe-should-retry")
    if should_retry == "true":
        return PspTransientError(message, **kwargs)
    if should_retry == "false":
        return PspPermanentError(message, **kwargs)

    if isinstance(exc, _TRANSIENT_TYPES):
        return PspTransientError(message, **kwargs)
    if isinstance(exc, _PERMANENT_TYPES):
        return PspPermanentError(message, **kwargs)
    if isinstance(exc, stripe.APIError) and (status is None or status >= 500):
        return PspTransientError(message, **kwargs)
    return PspPermanentError(message, **kwargs)


class StripeProvider(PaymentProvider):
    """Stripe Connect payouts and PaymentIntent funding. Thread-safe (one client, per-thread HTTP sessions).

    ``api_base`` points the SDK elsewhere (a local fake in tests);
    ``retry_wait_seconds`` / ``retry_wait_max_seconds`` bound tenacity's
    backoff; ``http_client`` replaces the default ``RequestsClient`` (its
    timeout then is the caller's business).
    """

    name = PROVIDER_NAME

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        timeout_seconds: float = 10.0,
        max_attempts: int = 3,
        retry_wait_seconds: float = 0.5,
        retry_wait_max_seconds: float = 8.0,
        funding_session_ttl: timedelta = timedelta(hours=24),
        stripe_version: str | None = None,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("StripeProvider needs an API key (settings.STRIPE_API_KEY).")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.retry_wait_seconds = retry_wait_seconds
        self.retry_wait_max_seconds = retry_wait_max_seconds
        self.funding_session_ttl = funding_session_ttl
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            stripe_version=stripe_version,
            max_network_retries=0,  # tenacity owns retries, see _call
            http_client=http_client or stripe.RequestsClient(timeout=timeout_seconds),
        )

    # -- plumbing ---------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one SDK call with our retry policy; only PspError comes out."""

        def attempt() -> T:
            try:
                return fn()
            except stripe.StripeError as exc:
                raise map_stripe_error(exc) from exc

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.retry_wait_seconds,
                max=self.retry_wait_max_seconds,
                jitter=self.retry_wait_seconds,
            ),
            retry=retry_if_exception_type(PspTransientError),
            before_sleep=before_sleep_log(logger, logging.WARNING),
            reraise=True,  # the last PspTransientError itself, not tenacity's RetryError
        )
        try:
            return retrying(attempt)
        except PspError as exc:
            logger.warning(
                "stripe %s failed: %s",
                operation,
                exc.code,
                extra={"psp_code": exc.psp_code, "http_status": exc.http_status, "retryable": exc.retryable},
            )
            raise

    @staticmethod
    def _metadata(base: dict[str, Any], **ours: Any) -> dict[str, str]:
        # Stripe metadata values are strings; our keys win over the caller's.
        return {**{str(k): str(v) for k, v in base.items()}, **{k: str(v) for k, v in ours.items()}}

    def _create(self, operation: str, service: Any, params: dict[str, Any], idempotency_key: str) -> Any:
        """``service.create(params)`` with our idempotency key, through :meth:`_call`:
        a retry of the same key gets the same Stripe object back, never a second one."""
        return self._call(
            operation,
            lambda: service.create(params=params, options={"idempotency_key": idempotency_key}),
        )

    # -- PaymentProvider ------------------------------------------------------------

    def create_funding_session(self, req: FundingSessionRequest) -> FundingSession:
        params = {
            "amount": psp_minor_units(req.amount, req.currency, provider=self.name),
            "currency": req.currency.lower(),
            "metadata": self._metadata(req.metadata, escrow_id=req.escrow_id),
        }
        intent = self._create("create_funding_session", self._client.v1.payment_intents, params, req.idempotency_key)
        created = getattr(intent, "created", None)
        started = datetime.fromtimestamp(created, tz=timezone.utc) if created else datetime.now(timezone.utc)
        return FundingSession(
            session_id=intent.id,
            provider=self.name,
            amount=req.amount,
            currency=req.currency,
            redirect_url=None,
            client_secret=intent.client_secret,
            expires_at=started + self.funding_session_ttl,
        )

    def create_payout(self, req: PayoutRequest) -> PayoutResult:
        if not req.destination.startswith("acct_"):
            # Refused here rather than by a round trip: Stripe transfers go to connected accounts only.
            raise PspPermanentError(
                f"Stripe payouts go to a connected account (acct_...), not {req.destination[:40]!r}.",
                provider=self.name,
                psp_code="invalid_destination",
            )
        params = {
            "amount": psp_minor_units(req.amount, req.currency, provider=self.name),
            "currency": req.currency.lower(),
            "destination": req.destination,
            "transfer_group": f"payment-{req.payment_id}",
            "metadata": self._metadata(req.metadata, payment_id=req.payment_id),
        }
        transfer = self._create("create_payout", self._client.v1.transfers, params, req.idempotency_key)
        status, raw = self._transfer_status(transfer)
        return PayoutResult(psp_ref=transfer.id, status=status, raw_status=raw)

    def fetch_payout_status(self, psp_ref: str) -> PayoutStatus:
        transfer = self._call("fetch_payout_status", lambda: self._client.v1.transfers.retrieve(psp_ref))
        status, raw = self._transfer_status(transfer)
        return PayoutStatus(psp_ref=transfer.id, status=status, raw_status=raw)

    @staticmethod
    def _transfer_status(transfer: Any) -> tuple[str, str]:
        if getattr(transfer, "reversed", False):
            return "FAILED", "reversed"
        if (getattr(transfer, "amount_reversed", 0) or 0) > 0:
            return "SENT", "partially_reversed"
        return "SENT", "created"

    def create_refund(self, req: RefundRequest) -> RefundResult:
        """A Refund of the funding PaymentIntent (``funding_ref``), keyed ``refund-<id>``;
        Stripe's ``refund.updated``/``refund.failed`` events report the outcome."""
        if not req.funding_ref.startswith("pi_"):
            raise PspPermanentError(
                f"Stripe refunds a PaymentIntent (pi_...), not {req.funding_ref[:40]!r}.",
                provider=self.name, psp_code="invalid_funding_ref",
            )
        params = {
            "payment_intent": req.funding_ref,
            "amount": psp_minor_units(req.amount, req.currency, provider=self.name),
            "metadata": self._metadata(req.metadata, refund_id=req.refund_id),
        }
        refund = self._create("create_refund", self._client.v1.refunds, params, req.idempotency_key)
        return RefundResult(psp_ref=refund.id, raw_status=str(getattr(refund, "status", "") or "pending"))
