"""May this payout leave now? The one place a payout is held back.

``payout_hold_reason(payment)`` is asked by every send path (the execute
task, the sweeper, ``POST /payments/{id}/execute``, the inspection job) under
the payment's lock, just before the payout would leave. It answers ``None``
(send it) or a stable reason code (``"disputed"``…) and the payout waits.

Reasons come from the apps above payments, registered from their
``AppConfig.ready()`` (payments cannot import them): ``escrow`` registers
``"disputed"`` (the payout's milestone is under an OPEN dispute). Another
reason (a payee not verified yet) is one more ``register_hold_check``.
"""

from __future__ import annotations

from collections.abc import Callable

from payments.models import Payment

HoldCheck = Callable[[Payment], "str | None"]
_CHECKS: list[HoldCheck] = []


def register_hold_check(check: HoldCheck) -> None:
    if check not in _CHECKS:
        _CHECKS.append(check)


def payout_hold_reason(payment: Payment) -> str | None:
    """The first reason this (locked) payout may not leave now, or ``None``."""
    for check in _CHECKS:
        reason = check(payment)
        if reason:
            return reason
    return None
