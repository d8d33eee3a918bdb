"""What a caller may do with an escrow now: one table, action → rule, shared with the services.

``EscrowRead.allowed_actions`` is computed from this table, and the services
refuse with the same rules: each row names the scopes its endpoint requires
(the view's ``required_scopes`` read them from here), whether the escrow's
provider may take it (else only its client, or staff), and the state rule
the service enforces (the status tuples below are the ones the services
check). A test takes every action on escrows in every state and shows that
what is listed succeeds and what is not is refused.

Adding an action (the second wave's ``dispute``, ``refund``, ``cancel``) is
one row here, and the service checking the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from escrow.models import EscrowAgreement, EscrowStatus, Milestone, MilestoneStatus
from kobatela.core.actor import Actor
from kobatela.core.scopes import Scope

# The states in which each service acts (the services refuse any other with 409 escrow_is_<status>).
DEPOSIT_FROM = (EscrowStatus.DRAFT,)
MARK_DELIVERED_FROM = (EscrowStatus.FUNDED,)
PROOFS_FROM = (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)
APPROVE_FROM = (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)
REJECT_FROM = (EscrowStatus.RELEASABLE,)
UPLOAD_LINK_FROM = (EscrowStatus.DRAFT, EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)

# A milestone still to be proven (and approved): proofs, approvals and upload links are for these.
OPEN_MILESTONE_STATUSES = (MilestoneStatus.WAITING, MilestoneStatus.PENDING_REVIEW, MilestoneStatus.REJECTED)


def current_milestone(milestones: Iterable[Milestone]) -> Milestone | None:
    """The lowest milestone not yet approved: the only one that accepts proofs."""
    for milestone in sorted(milestones, key=lambda m: m.idx):
        if milestone.status in OPEN_MILESTONE_STATUSES:
            return milestone
    return None


@dataclass(frozen=True)
class EscrowAction:
    scopes: frozenset[str]
    provider_may: bool
    allowed_now: Callable[[EscrowAgreement, list[Milestone]], bool]


def _in(states: tuple[str, ...]) -> Callable[[EscrowAgreement, list[Milestone]], bool]:
    return lambda escrow, milestones: escrow.status in states


def _proof_welcome(escrow: EscrowAgreement, milestones: list[Milestone]) -> bool:
    return escrow.status in PROOFS_FROM and current_milestone(milestones) is not None


def _something_to_approve(escrow: EscrowAgreement, milestones: list[Milestone]) -> bool:
    return escrow.status in APPROVE_FROM and any(m.status in OPEN_MILESTONE_STATUSES for m in milestones)


def _link_possible(escrow: EscrowAgreement, milestones: list[Milestone]) -> bool:
    return escrow.status in UPLOAD_LINK_FROM and any(m.status in OPEN_MILESTONE_STATUSES for m in milestones)


SENDER = frozenset({Scope.SENDER})
ACTIONS: dict[str, EscrowAction] = {
    "deposit": EscrowAction(SENDER, provider_may=False, allowed_now=_in(DEPOSIT_FROM)),
    "mark_delivered": EscrowAction(frozenset({Scope.SENDER, Scope.PROVIDER}), provider_may=True,
                                   allowed_now=_in(MARK_DELIVERED_FROM)),
    "submit_proof": EscrowAction(frozenset({Scope.SENDER, Scope.PROVIDER}), provider_may=True,
                                 allowed_now=_proof_welcome),
    "approve": EscrowAction(SENDER, provider_may=False, allowed_now=_something_to_approve),
    "reject": EscrowAction(SENDER, provider_may=False, allowed_now=_in(REJECT_FROM)),
    "create_upload_link": EscrowAction(frozenset({Scope.SENDER, Scope.ADMIN}), provider_may=False,
                                       allowed_now=_link_possible),
}


def _is_party(escrow: EscrowAgreement, actor: Actor, action: EscrowAction) -> bool:
    """The same rule as ``escrow.selectors.escrow_party_filter`` (what the services lock), on a loaded row."""
    if actor.sees_all:
        return True
    if actor.acts_as_client and escrow.client_id == actor.user_id:
        return True
    return action.provider_may and actor.acts_as_provider and escrow.provider_id == actor.user_id


def allowed_actions(escrow: EscrowAgreement, actor: Actor) -> list[str]:
    """The actions ``actor`` may take on ``escrow`` now, in the table's order
    (milestones prefetched: no query)."""
    milestones = list(escrow.milestones.all())
    return [name for name, action in ACTIONS.items()
            if actor.scopes & action.scopes and _is_party(escrow, actor, action)
            and action.allowed_now(escrow, milestones)]
