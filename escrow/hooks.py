"""What the apps above escrow are told when a milestone is closed, from their ``AppConfig.ready()``.

A milestone is *closed* when it leaves the open statuses (WAITING,
PENDING_REVIEW, REJECTED) for good: approved (a client approval, a proof
decision, a photo auto-approval, the deadline policy) or RESOLVED by a
dispute. PAID only follows APPROVED, so it is never a second closing.

escrow cannot import the apps above it, so they register here: ``proofs``
supersedes the milestone's pending proofs. Listeners run inside the
transaction that closes the milestone, with the milestone locked; one that
raises rolls the change back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kobatela.core.actor import Actor
from kobatela.core.transactions import require_transaction


class MilestoneClosedListener(Protocol):
    def __call__(self, *, actor: Actor | str, milestone, reason: str) -> None: ...


_MILESTONE_CLOSED: list[Callable[..., None]] = []


def on_milestone_closed(listener: MilestoneClosedListener) -> None:
    """Register ``listener(actor=, milestone=, reason=)``; registering twice is one registration."""
    if listener not in _MILESTONE_CLOSED:
        _MILESTONE_CLOSED.append(listener)


def milestone_closed(*, actor: Actor | str, milestone, reason: str) -> None:
    """Tell every listener that ``milestone`` (locked, already saved in its new status) is closed."""
    require_transaction("milestone_closed")
    for listener in tuple(_MILESTONE_CLOSED):
        listener(actor=actor, milestone=milestone, reason=reason)
