"""The one PSP interface: requests, results, errors and minor-unit money.

Every payment service provider adapter (``sandbox``, ``stripe``) implements
:class:`PaymentProvider` and speaks only these types, so services never see a
provider's SDK objects or exceptions::

    provider = get_provider()                       # payments.psp
    result = provider.create_payout(PayoutRequest(
        payment_id=payment.id, amount=payment.amount, currency=payment.currency,
        destination=payment.destination,
    ))                                              # idempotency key: payout-<id>

Errors are narrow: :class:`PspTransientError` (timeouts, connection errors,
5xx, 429 — the same call may be retried with the same idempotency key) and
:class:`PspPermanentError` (the provider refused the request — retrying the
same request cannot help). Both are :class:`~kobatela.core.errors.DomainError`
subclasses, so if one ever reaches the API the one exception handler renders
it in the contract's shape (502/503) instead of a bare 500.

Amounts are ``Decimal`` in major units (``Decimal("12.50")`` USD) everywhere
in Kobatela; adapters convert once, at the boundary, with
:func:`psp_minor_units` (``kobatela.core.money`` holds the currency rules).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from kobatela.core.errors import DomainError
from kobatela.core.money import normalize_currency, require_decimal, to_minor_units

__all__ = [
    "FundingSession",
    "FundingSessionRequest",
    "PaymentProvider",
    "PayoutRequest",
    "PayoutResult",
    "PayoutStatus",
    "PayoutStatusValue",
    "PspError",
    "PspPermanentError",
    "PspTransientError",
    "RefundRequest",
    "RefundResult",
    "payout_idempotency_key",
    "refund_idempotency_key",
    "psp_minor_units",
]

# --- Minor units at the boundary ----------------------------------------------


def psp_minor_units(amount: Decimal, currency: str, *, provider: str) -> int:
    """:func:`to_minor_units` for adapters: a lossy amount is the PSP refusing the request.

    ``Decimal("1500.50")`` XOF can sit in a two-decimal money column but no
    PSP will take it; adapters answer :class:`PspPermanentError`
    (``psp_code="amount_precision"``) so the caller records it like any refusal.
    """
    try:
        return to_minor_units(amount, currency)
    except ValueError as exc:
        raise PspPermanentError(str(exc), provider=provider, psp_code="amount_precision") from exc


# --- Requests and results ----------------------------------------------------

PayoutStatusValue = Literal["SENT", "SETTLED", "FAILED"]
_PAYOUT_STATUSES = frozenset({"SENT", "SETTLED", "FAILED"})


def payout_idempotency_key(payment_id: int, generation: int = 1) -> str:
    """The idempotency key a payout carries to the PSP: ``payout-<payment id>``.

    Derived from our own row, so every retry of the same Payment — a Celery
    retry, the sweeper, a manual ``/execute`` — is the same request to the PSP
    and is paid at most once. Only when the PSP itself reports the payout
    failed (``payout.failed``) does the payment move to a new *generation*
    (``payout-<id>-g2``…): replaying the failed request would return the same
    failed payout and never pay.
    """
    if isinstance(payment_id, bool) or not isinstance(payment_id, int) or payment_id <= 0:
        raise ValueError(f"payment_id must be a positive int, not {payment_id!r}")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
        raise ValueError(f"generation must be a positive int, not {generation!r}")
    return f"payout-{payment_id}" if generation == 1 else f"payout-{payment_id}-g{generation}"


def refund_idempotency_key(refund_id: int) -> str:
    """The idempotency key a refund carries to the PSP: ``refund-<refund id>``, from our
    own row, so a retried send refunds once."""
    if isinstance(refund_id, bool) or not isinstance(refund_id, int) or refund_id <= 0:
        raise ValueError(f"refund_id must be a positive int, not {refund_id!r}")
    return f"refund-{refund_id}"


def _check_amount(amount: Any) -> None:
    value = require_decimal(amount)
    if value <= 0:
        raise ValueError(f"Amount must be positive, not {value}")


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not (1 <= len(key) <= 255):
        raise ValueError("idempotency_key must be a string of 1-255 characters")


@dataclass(frozen=True)
class FundingSessionRequest:
    """Ask the PSP for a way for the client to fund escrow ``escrow_id``."""

    escrow_id: int
    amount: Decimal
    currency: str
    idempotency_key: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        _check_key(self.idempotency_key)
        object.__setattr__(self, "metadata", dict(self.metadata or {}))


@dataclass(frozen=True)
class FundingSession:
    """What the client needs to pay: a redirect URL or a client secret (or both)."""

    session_id: str
    provider: str
    amount: Decimal
    currency: str
    redirect_url: str | None
    client_secret: str | None
    expires_at: datetime

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        object.__setattr__(self, "currency", normalize_currency(self.currency))


@dataclass(frozen=True)
class PayoutRequest:
    """Pay ``amount`` to ``destination`` (the payee's account reference at the PSP).

    ``idempotency_key`` is always :func:`payout_idempotency_key` of
    ``payment_id`` and ``generation``; leave it out and it is filled in, pass
    anything else and the request is refused — a payout with a free-form key
    could pay twice.
    """

    payment_id: int
    amount: Decimal
    currency: str
    destination: str
    idempotency_key: str = ""
    generation: int = 1
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        expected = payout_idempotency_key(self.payment_id, self.generation)
        if not self.idempotency_key:
            object.__setattr__(self, "idempotency_key", expected)
        elif self.idempotency_key != expected:
            raise ValueError(f"A payout's idempotency key is {expected!r}, not {self.idempotency_key!r}")
        _check_amount(self.amount)
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        if not isinstance(self.destination, str) or not self.destination.strip():
            raise ValueError("destination (the payee's PSP account reference) is required")
        object.__setattr__(self, "metadata", dict(self.metadata or {}))


@dataclass(frozen=True)
class RefundRequest:
    """Give ``amount`` of the funding charge ``funding_ref`` back to the client.
    The idempotency key is always :func:`refund_idempotency_key` of ``refund_id``."""

    refund_id: int
    amount: Decimal
    currency: str
    funding_ref: str
    idempotency_key: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        expected = refund_idempotency_key(self.refund_id)
        if not self.idempotency_key:
            object.__setattr__(self, "idempotency_key", expected)
        elif self.idempotency_key != expected:
            raise ValueError(f"A refund's idempotency key is {expected!r}, not {self.idempotency_key!r}")
        _check_amount(self.amount)
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        object.__setattr__(self, "metadata", dict(self.metadata or {}))


@dataclass(frozen=True)
class RefundResult:
    """The PSP accepted the refund: its reference and raw status; settlement arrives by webhook."""

    psp_ref: str
    raw_status: str


def _check_status(status: str) -> None:
    if status not in _PAYOUT_STATUSES:
        raise ValueError(f"Payout status must be one of {sorted(_PAYOUT_STATUSES)}, not {status!r}")


@dataclass(frozen=True)
class PayoutResult:
    """The PSP accepted the payout: its reference and our reading of its status."""

    psp_ref: str
    status: PayoutStatusValue
    raw_status: str

    def __post_init__(self) -> None:
        _check_status(self.status)


@dataclass(frozen=True)
class PayoutStatus:
    """A payout's current status at the PSP (``raw_status`` is the PSP's own word)."""

    psp_ref: str
    status: PayoutStatusValue
    raw_status: str

    def __post_init__(self) -> None:
        _check_status(self.status)


# --- Errors -------------------------------------------------------------------


class PspError(DomainError):
    """The PSP call failed. ``retryable`` says whether the same call may be tried again.

    ``psp_code`` is the provider's own error code when it gave one
    (``resource_missing``, ``rate_limit``…), ``http_status`` its HTTP status
    (``None`` when no response arrived). The original SDK exception, if any,
    is the ``__cause__``.
    """

    status = 502
    default_code = "psp_error"
    default_message = "The payment provider could not process the request."
    retryable: bool = False

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str = "",
        psp_code: str | None = None,
        http_status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.provider = provider
        self.psp_code = psp_code
        self.http_status = http_status
        super().__init__(
            code,
            message,
            details={"provider": provider, "psp_code": psp_code, "retryable": self.retryable},
        )


class PspTransientError(PspError):
    """Timeout, connection error, 5xx or 429: try again later, with the same idempotency key."""

    status = 503
    default_code = "psp_unavailable"
    default_message = "The payment provider is temporarily unavailable."
    retryable = True


class PspPermanentError(PspError):
    """Invalid request, bad credentials, declined card, unknown account: retrying cannot help."""

    status = 502
    default_code = "psp_refused"
    default_message = "The payment provider refused the request."
    retryable = False


# --- The interface --------------------------------------------------------------


class PaymentProvider(abc.ABC):
    """One PSP. Implementations must be safe to share between threads.

    Every method either returns a result or raises a :class:`PspError`; SDK
    and network exceptions never escape.
    """

    #: ``"sandbox"``, ``"stripe"`` — stored nowhere, used in logs and FundingSession.provider.
    name: str

    @abc.abstractmethod
    def create_funding_session(self, req: FundingSessionRequest) -> FundingSession:
        """Open (or, for a repeated idempotency key, return again) a funding session."""

    @abc.abstractmethod
    def create_payout(self, req: PayoutRequest) -> PayoutResult:
        """Send a payout. The same ``req.idempotency_key`` never pays twice."""

    @abc.abstractmethod
    def fetch_payout_status(self, psp_ref: str) -> PayoutStatus:
        """Read a payout's status at the PSP (for sweepers and reconciliation)."""

    @abc.abstractmethod
    def create_refund(self, req: RefundRequest) -> RefundResult:
        """Refund part or all of a funding charge. The same ``req.idempotency_key`` never refunds twice."""
