"""The sandbox PSP: the default provider. In-process, deterministic, no network.

References are derived from the idempotency key, so the same key always gives
the same reference — in this process, in another worker, after a restart::

    payout:          sbx_po_<sha256(idempotency_key)[:16]>
    funding session: sbx_fs_<sha256(idempotency_key)[:16]>

A payout is answered ``SENT``; settlement arrives later as a signed
``payout.settled`` webhook (``/psp/webhook``), as with a real PSP.

The module keeps a thread-safe record of the payouts and funding sessions
created in *this process*, one per idempotency key, so tests can assert that
a payout was made exactly once (:func:`recorded_payouts`,
:func:`payout_create_count`); :func:`reset` clears it between tests. Reusing a
key with a different amount, currency or destination is refused with
``PspPermanentError(code="psp_idempotency_conflict")``, as Stripe refuses it.

Test hooks (like the magic card numbers and account ids of real PSP
sandboxes), chosen by the payout's ``destination`` — or, for funding
sessions, by ``metadata["sandbox_hook"]``:

``fail:transient`` (optionally ``fail:transient:<anything>``)
    raises :class:`PspTransientError` every time; nothing is recorded.
``fail:transient-once``
    raises :class:`PspTransientError` on the first call for an idempotency
    key, succeeds on the next (a retry that recovers).
``fail:permanent``
    raises :class:`PspPermanentError`; nothing is recorded.

Any other ``fail:...`` value is refused (a typo must not pay out).

:meth:`SandboxProvider.fetch_payout_status` answers what the record says
(``SENT`` unless a test called :func:`set_payout_status` to simulate the PSP's
later verdict); a well-formed ``sbx_po_`` reference this process has not
seen — sent by another worker — reads ``SENT``; anything else is
``PspPermanentError`` (``resource_missing``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from .base import (
    FundingSession,
    FundingSessionRequest,
    PaymentProvider,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    PayoutStatusValue,
    PspPermanentError,
    PspTransientError,
    RefundRequest,
    RefundResult,
    psp_minor_units,
)

__all__ = [
    "FUNDING_SESSION_TTL",
    "SandboxPayout",
    "SandboxProvider",
    "payout_create_count",
    "payout_ref",
    "funding_session_ref",
    "recorded_funding_sessions",
    "recorded_payouts",
    "recorded_refunds",
    "reset",
    "set_payout_status",
]

PROVIDER_NAME = "sandbox"
FUNDING_SESSION_TTL = timedelta(hours=1)
HOOK_PREFIX = "fail:"
HOOK_TRANSIENT = "transient"
HOOK_TRANSIENT_ONCE = "transient-once"
HOOK_PERMANENT = "permanent"
_PAYOUT_REF_RE = re.compile(r"^sbx_po_[0-9a-f]{16}$")


def _digest(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:16]


def payout_ref(idempotency_key: str) -> str:
    """The reference the sandbox gives the payout sent with ``idempotency_key``."""
    return f"sbx_po_{_digest(idempotency_key)}"


def funding_session_ref(idempotency_key: str) -> str:
    """The id the sandbox gives the funding session opened with ``idempotency_key``."""
    return f"sbx_fs_{_digest(idempotency_key)}"


@dataclass
class SandboxPayout:
    """One payout the sandbox made (one per idempotency key)."""

    request: PayoutRequest
    psp_ref: str
    status: PayoutStatusValue
    raw_status: str
    created_at: datetime
    calls: int = 1  # create_payout calls answered for this key, the first included


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    payouts: dict[str, SandboxPayout] = field(default_factory=dict)  # idempotency key → payout
    by_ref: dict[str, str] = field(default_factory=dict)  # psp_ref → idempotency key
    sessions: dict[str, tuple[FundingSessionRequest, FundingSession]] = field(default_factory=dict)
    failed_once: set[str] = field(default_factory=set)  # keys whose transient-once failure happened
    refunds: dict[str, tuple[RefundRequest, RefundResult]] = field(default_factory=dict)  # idempotency key → refund


_state = _State()


def reset() -> None:
    """Forget every payout and funding session (call between tests)."""
    with _state.lock:
        _state.payouts.clear()
        _state.by_ref.clear()
        _state.sessions.clear()
        _state.failed_once.clear()
        _state.refunds.clear()


def recorded_refunds() -> dict[str, RefundRequest]:
    """A snapshot: idempotency key → the refund made for it in this process (one per key)."""
    with _state.lock:
        return {key: req for key, (req, _) in _state.refunds.items()}


def recorded_payouts() -> dict[str, SandboxPayout]:
    """A snapshot: idempotency key → the payout made for it in this process."""
    with _state.lock:
        return dict(_state.payouts)


def payout_create_count(idempotency_key: str) -> int:
    """How many payouts exist for ``idempotency_key``: 0 or 1, never more."""
    with _state.lock:
        return 1 if idempotency_key in _state.payouts else 0


def recorded_funding_sessions() -> dict[str, FundingSession]:
    """A snapshot: idempotency key → the funding session opened for it."""
    with _state.lock:
        return {key: session for key, (_, session) in _state.sessions.items()}


def set_payout_status(psp_ref: str, status: PayoutStatusValue, raw_status: str | None = None) -> None:
    """Simulate the PSP's later verdict on a payout (what ``fetch_payout_status`` answers)."""
    PayoutStatus(psp_ref=psp_ref, status=status, raw_status=raw_status or status.lower())  # validates
    with _state.lock:
        key = _state.by_ref.get(psp_ref)
        if key is None:
            raise KeyError(psp_ref)
        payout = _state.payouts[key]
        payout.status = status
        payout.raw_status = raw_status or status.lower()


def _apply_hook(hook: str, idempotency_key: str) -> None:
    """Raise what a ``fail:...`` hook asks for. Called under the state lock."""
    if not hook.startswith(HOOK_PREFIX):
        return
    kind = hook[len(HOOK_PREFIX) :].split(":", 1)[0]
    if kind == HOOK_TRANSIENT:
        raise PspTransientError("Sandbox hook: simulated PSP outage.", provider=PROVIDER_NAME, psp_code="sandbox_transient")
    if kind == HOOK_TRANSIENT_ONCE:
        if idempotency_key not in _state.failed_once:
            _state.failed_once.add(idempotency_key)
            raise PspTransientError(
                "Sandbox hook: simulated PSP outage (first attempt only).",
                provider=PROVIDER_NAME,
                psp_code="sandbox_transient_once",
            )
        return
    if kind == HOOK_PERMANENT:
        raise PspPermanentError("Sandbox hook: simulated PSP refusal.", provider=PROVIDER_NAME, psp_code="sandbox_permanent")
    raise PspPermanentError(f"Unknown sandbox hook {hook!r}.", provider=PROVIDER_NAME, psp_code="sandbox_unknown_hook")


def _conflict(idempotency_key: str) -> PspPermanentError:
    return PspPermanentError(
        f"Idempotency key {idempotency_key!r} was already used with different parameters.",
        provider=PROVIDER_NAME,
        psp_code="idempotency_error",
        code="psp_idempotency_conflict",
    )


class SandboxProvider(PaymentProvider):
    """See the module docstring. Instances share the module-level record."""

    name = PROVIDER_NAME

    def __init__(self, *, funding_session_ttl: timedelta = FUNDING_SESSION_TTL) -> None:
        self.funding_session_ttl = funding_session_ttl

    def create_funding_session(self, req: FundingSessionRequest) -> FundingSession:
        key = req.idempotency_key
        with _state.lock:
            existing = _state.sessions.get(key)
            if existing is not None:
                first_req, session = existing
                if (first_req.escrow_id, first_req.amount, first_req.currency) != (req.escrow_id, req.amount, req.currency):
                    raise _conflict(key)
                return session
            _apply_hook(str(req.metadata.get("sandbox_hook", "")), key)
            psp_minor_units(req.amount, req.currency, provider=self.name)  # refuse what a real PSP refuses
            session_id = funding_session_ref(key)
            secret = hashlib.sha256(f"client-secret:{key}".encode()).hexdigest()[:24]
            session = FundingSession(
                session_id=session_id,
                provider=self.name,
                amount=req.amount,
                currency=req.currency,
                redirect_url=None,
                client_secret=f"{session_id}_secret_{secret}",
                expires_at=datetime.now(timezone.utc) + self.funding_session_ttl,
            )
            _state.sessions[key] = (req, session)
            return session

    def create_payout(self, req: PayoutRequest) -> PayoutResult:
        key = req.idempotency_key
        # One lock around check-and-create: twenty threads sending the same
        # payout get one record and one reference.
        with _state.lock:
            existing = _state.payouts.get(key)
            if existing is not None:
                first = existing.request
                if (Decimal(first.amount), first.currency, first.destination) != (
                    Decimal(req.amount),
                    req.currency,
                    req.destination,
                ):
                    raise _conflict(key)
                existing.calls += 1
                return PayoutResult(psp_ref=existing.psp_ref, status=existing.status, raw_status=existing.raw_status)
            _apply_hook(req.destination, key)
            psp_minor_units(req.amount, req.currency, provider=self.name)  # refuse what a real PSP refuses
            payout = SandboxPayout(
                request=req,
                psp_ref=payout_ref(key),
                status="SENT",
                raw_status="sent",
                created_at=datetime.now(timezone.utc),
            )
            _state.payouts[key] = payout
            _state.by_ref[payout.psp_ref] = key
            return PayoutResult(psp_ref=payout.psp_ref, status=payout.status, raw_status=payout.raw_status)

    def fetch_payout_status(self, psp_ref: str) -> PayoutStatus:
        with _state.lock:
            key = _state.by_ref.get(psp_ref)
            if key is not None:
                payout = _state.payouts[key]
                return PayoutStatus(psp_ref=psp_ref, status=payout.status, raw_status=payout.raw_status)
        # The record is per process: a payout sent by another worker is not in
        # it, yet its reference is well-formed. The sandbox "PSP" knows it as
        # sent (settlement comes by webhook); anything else does not exist.
        if _PAYOUT_REF_RE.match(psp_ref or ""):
            return PayoutStatus(psp_ref=psp_ref, status="SENT", raw_status="sent")
        raise PspPermanentError(
            f"No such payout: {psp_ref!r}.", provider=self.name, psp_code="resource_missing", http_status=404
        )

    def create_refund(self, req: RefundRequest) -> RefundResult:
        """Answered ``pending`` (``sbx_re_<digest>``); ``refund.settled``/``refund.failed`` arrive by
        signed webhook. ``metadata["sandbox_hook"]`` takes the payout hooks (``fail:permanent``…)."""
        key = req.idempotency_key
        with _state.lock:
            existing = _state.refunds.get(key)
            if existing is not None:
                first, result = existing
                if (Decimal(first.amount), first.currency, first.funding_ref) != (Decimal(req.amount), req.currency,
                                                                                    req.funding_ref):
                    raise _conflict(key)
                return result
            _apply_hook(str(req.metadata.get("sandbox_hook", "")), key)
            psp_minor_units(req.amount, req.currency, provider=self.name)
            result = RefundResult(psp_ref=f"sbx_re_{_digest(key)}", raw_status="pending")
            _state.refunds[key] = (req, result)
            return result
