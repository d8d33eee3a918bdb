"""The current request id, visible to logs, errors and audit rows.

A ``ContextVar`` rather than a thread-local: it follows the request through
sync and async code alike, and Celery tasks may set it from their headers.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What we accept from a client's X-Request-ID; anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def get_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


def accept_or_generate(candidate: str | None) -> str:
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


# The Celery task being run in this context (logs of a worker carry it beside
# the request id of the request that queued the task).
_task: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)


def get_task() -> tuple[str, str] | None:
    """``(task id, task name)`` while a Celery task runs, else None."""
    return _task.get()


def set_task(value: tuple[str, str] | None):
    return _task.set(value)


def reset_task(token) -> None:
    _task.reset(token)
