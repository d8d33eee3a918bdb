"""What a caller may do with an escrow now: one table, action → rule, shared with the services.

``EscrowRead.allowed_actions`` is computed from :data:`ACTIONS`, and the
services refuse with the same rules: each row names the scopes its endpoint
requires (the views' ``required_scopes`` read them from here), whether the
escrow's provider may take it (else only its client, or staff), and the rule
the service enforces — the state tuples of ``escrow.actions`` for the first
wave's actions, and for ``dispute``, ``refund`` and ``cancel`` the pure
predicates below, which answer with the refusal rules the services apply
under the escrow's lock (``escrow_dispute_refusal``, ``escrow_refund_refusal``,
``escrow_cancel_refusal``). They read, never write nor lock. A test takes
every action on escrows in every state and shows that what is listed
succeeds and what is not is refused.

Adding an action is one row here, and the service checking the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from escrow.actions import (
    APPROVE_FROM,
    DEPOSIT_FROM,
    MARK_DELIVERED_FROM,
    OPEN_MILESTONE_STATUSES,
    PROOFS_FROM,
    REJECT_FROM,
    UPLOAD_LINK_FROM,
    current_milestone,
)
from escrow.disputes import DISPUTABLE_ESCROW_STATUSES, dispute_coverage, escrow_dispute_refusal
from escrow.models import DisputeParty, EscrowAgreement, EscrowStatus, Milestone
from escrow.refunds import REFUNDABLE_STATUSES, escrow_refund_refusal
from escrow.selectors import disputed_milestone_ids, escrow_open_dispute, escrow_party_of
from escrow.services import escrow_cancel_refusal
from kobatela.core.actor import Actor
from kobatela.core.scopes import Scope


def _client_or_admin(actor: Actor, escrow: EscrowAgreement) -> bool:
    """``sender (own), admin``: the client's sender key, or an admin key or staff."""
    return escrow_party_of(actor, escrow) == DisputeParty.CLIENT or Scope.ADMIN in actor.scopes \
        or actor.label.startswith("staff:")


def may_dispute(actor: Actor, escrow: EscrowAgreement) -> bool:
    """The client or the provider, on a funded escrow with no open dispute and something not yet paid out."""
    party = escrow_party_of(actor, escrow)
    if party is None or escrow.status not in DISPUTABLE_ESCROW_STATUSES:
        return False  # the service's first refusals, decided from the row alone (no query)
    _, held = dispute_coverage(escrow, lock=False)
    return escrow_dispute_refusal(escrow, party=party, disputed=escrow_open_dispute(escrow.pk) is not None,
                                  coverable=held > 0) is None


def may_refund(actor: Actor, escrow: EscrowAgreement) -> bool:
    """The client (or an admin), with something refundable and no dispute open."""
    if not _client_or_admin(actor, escrow) or escrow.status not in REFUNDABLE_STATUSES \
            or escrow.amount_funded <= escrow.amount_released + escrow.amount_refunded:
        return False  # nothing held at all: the service's refusal, decided from the row alone (no query)
    if escrow.status == EscrowStatus.DRAFT:
        # A draft has no dispute (disputes need a funded escrow) and no payout promised (payouts
        # need an approval): the service's refusal reduces to the funds it holds, checked above.
        return True
    return escrow_refund_refusal(escrow, disputed=escrow_open_dispute(escrow.pk) is not None) is None


def may_cancel(actor: Actor, escrow: EscrowAgreement) -> bool:
    """The client (or an admin), on a DRAFT with nothing funded."""
    return _client_or_admin(actor, escrow) and escrow_cancel_refusal(escrow) is None


@dataclass(frozen=True)
class EscrowAction:
    scopes: frozenset[str]
    provider_may: bool
    allowed_now: Callable[[Actor, EscrowAgreement, list[Milestone]], bool]


def _in(states: tuple[str, ...]) -> Callable[[Actor, EscrowAgreement, list[Milestone]], bool]:
    return lambda actor, escrow, milestones: escrow.status in states


def _proof_welcome(actor: Actor, escrow: EscrowAgreement, milestones: list[Milestone]) -> bool:
    return escrow.status in PROOFS_FROM and current_milestone(milestones) is not None


def _something_to_approve(actor: Actor, escrow: EscrowAgreement, milestones: list[Milestone]) -> bool:
    """As ``escrow_client_approve``: an open milestone that no open dispute covers (its dispute decides it)."""
    if escrow.status not in APPROVE_FROM:
        return False
    open_ids = {m.pk for m in milestones if m.status in OPEN_MILESTONE_STATUSES}
    return bool(open_ids) and bool(open_ids - disputed_milestone_ids(escrow.pk))


def _link_possible(actor: Actor, escrow: EscrowAgreement, milestones: list[Milestone]) -> bool:
    return escrow.status in UPLOAD_LINK_FROM and any(m.status in OPEN_MILESTONE_STATUSES for m in milestones)


SENDER = frozenset({Scope.SENDER})
SENDER_OR_ADMIN = frozenset({Scope.SENDER, Scope.ADMIN})
PARTIES = frozenset({Scope.SENDER, Scope.PROVIDER})
ACTIONS: dict[str, EscrowAction] = {
    "deposit": EscrowAction(SENDER, provider_may=False, allowed_now=_in(DEPOSIT_FROM)),
    "mark_delivered": EscrowAction(PARTIES, provider_may=True, allowed_now=_in(MARK_DELIVERED_FROM)),
    "submit_proof": EscrowAction(PARTIES, provider_may=True, allowed_now=_proof_welcome),
    "approve": EscrowAction(SENDER, provider_may=False, allowed_now=_something_to_approve),
    "reject": EscrowAction(SENDER, provider_may=False, allowed_now=_in(REJECT_FROM)),
    "create_upload_link": EscrowAction(SENDER_OR_ADMIN, provider_may=False, allowed_now=_link_possible),
    "dispute": EscrowAction(PARTIES, provider_may=True, allowed_now=lambda a, e, ms: may_dispute(a, e)),
    "refund": EscrowAction(SENDER_OR_ADMIN, provider_may=False, allowed_now=lambda a, e, ms: may_refund(a, e)),
    "cancel": EscrowAction(SENDER_OR_ADMIN, provider_may=False, allowed_now=lambda a, e, ms: may_cancel(a, e)),
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
    (milestones prefetched; the dispute, refund and cancel rules read the
    escrow's disputes and payouts)."""
    milestones = list(escrow.milestones.all())
    return [name for name, action in ACTIONS.items()
            if actor.scopes & action.scopes and _is_party(escrow, actor, action)
            and action.allowed_now(actor, escrow, milestones)]
