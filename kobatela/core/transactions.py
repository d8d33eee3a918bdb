"""The one way a service opens its transaction, and the request's unit it may join.

A money-moving service runs in ``service_transaction()``: its own outermost
(durable) transaction, so that it commits or rolls back as a whole and nobody
can wrap it in a longer one by accident — with one exception. An idempotent
request (``kobatela.core.idempotency``) opens a *unit*: one transaction in
which the service's effect and the stored response of its ``Idempotency-Key``
commit together, so no crash can leave an effect committed and its key
unanswered (Stripe's atomic phases). Inside a unit the service joins it, as a
savepoint: a refusal it raises rolls back its own writes and the refusal is
stored as the key's answer.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from django.db import transaction

_in_request_unit: ContextVar[bool] = ContextVar("in_request_unit", default=False)


def require_transaction(what: str) -> None:
    """Refuse to run ``what`` outside a transaction: it writes rows that must
    commit, or roll back, with the change the caller's transaction makes."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{what} must run inside the transaction that makes the change")


def service_transaction() -> transaction.Atomic:
    """``transaction.atomic(durable=True)``, or a savepoint of the request's unit when one is open."""
    if _in_request_unit.get():
        return transaction.atomic()
    return transaction.atomic(durable=True)


@contextmanager
def request_unit() -> Iterator[None]:
    """The idempotent request's transaction, which the services it calls join."""
    with transaction.atomic(durable=True):
        token = _in_request_unit.set(True)
        try:
            yield
        finally:
            _in_request_unit.reset(token)
