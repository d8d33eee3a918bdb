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
from functools import cached_property

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
from escrow.models import Dispute, DisputeParty, EscrowAgreement, EscrowStatus, Milestone
from escrow.refunds import REFUNDABLE_STATUSES, escrow_refund_refusal
from escrow.selectors import disputed_milestone_ids, escrow_open_dispute, escrow_party_of
from escrow.services import escrow_cancel_refusal
from kobatela.core.actor import Actor
from kobatela.core.scopes import Scope


class EscrowFacts:
    """One escrow as the rules read it: its row, its milestones (prefetched), and what
    several rules ask the database about it — each asked at most once per read."""

    def __init__(self, escrow: EscrowAgreement, milestones: list[Milestone] | None = None) -> None:
        self.escrow = escrow
        self.milestones = list(escrow.milestones.all()) if milestones is None else milestones

    @cached_property
    def open_dispute(self) -> Dispute | None:
        return escrow_open_dispute(self.escrow.pk)

    @cached_property
    def disputed_ids(self) -> set[int]:
        return set() if self.open_dispute is None else disputed_milestone_ids(self.escrow.pk)


def _client_or_admin(actor: Actor, escrow: EscrowAgreement) -> bool:
    """``sender (own), admin``: the client's sender key, or an admin key or staff."""
    return escrow_party_of(actor, escrow) == DisputeParty.CLIENT or Scope.ADMIN in actor.scopes \
        or actor.label.startswith("staff:")


def may_dispute(actor: Actor, escrow: EscrowAgreement, facts: EscrowFacts | None = None) -> bool:
    """The client or the provider, on a funded escrow with no open dispute and something not yet paid out."""
    party = escrow_party_of(actor, escrow)
    if party is None or escrow.status not in DISPUTABLE_ESCROW_STATUSES:
        return False  # the service's first refusals, decided from the row alone (no query)
    facts = facts or EscrowFacts(escrow)
    if facts.open_dispute is not None:
        return False  # already disputed: the coverage need not be read
    _, held = dispute_coverage(escrow, lock=False, milestones=facts.milestones)
    return escrow_dispute_refusal(escrow, party=party, disputed=False, coverable=held > 0) is None


def may_refund(actor: Actor, escrow: EscrowAgreement, facts: EscrowFacts | None = None) -> bool:
    """The client (or an admin), with something refundable and no dispute open."""
    if not _client_or_admin(actor, escrow) or escrow.status not in REFUNDABLE_STATUSES \
            or escrow.amount_funded <= escrow.amount_released + escrow.amount_refunded:
        return False  # nothing held at all: the service's refusal, decided from the row alone (no query)
    if escrow.status == EscrowStatus.DRAFT:
        # A draft has no dispute (disputes need a funded escrow) and no payout promised (payouts
        # need an approval): the service's refusal reduces to the funds it holds, checked above.
        return True
    facts = facts or EscrowFacts(escrow)
    return escrow_refund_refusal(escrow, disputed=facts.open_dispute is not None) is None


def may_cancel(actor: Actor, escrow: EscrowAgreement, facts: EscrowFacts | None = None) -> bool:
    """The client (or an admin), on a DRAFT with nothing funded."""
    return _client_or_admin(actor, escrow) and escrow_cancel_refusal(escrow) is None


Rule = Callable[[Actor, EscrowFacts], bool]


@dataclass(frozen=True)
class EscrowAction:
    scopes: frozenset[str]
    provider_may: bool
    allowed_now: Rule


def _in(states: tuple[str, ...]) -> Rule:
    return lambda actor, facts: facts.escrow.status in states


def _proof_welcome(actor: Actor, facts: EscrowFacts) -> bool:
    return facts.escrow.status in PROOFS_FROM and current_milestone(facts.milestones) is not None


def _something_to_approve(actor: Actor, facts: EscrowFacts) -> bool:
    """As ``escrow_client_approve``: an open milestone that no open dispute covers (its dispute decides it)."""
    if facts.escrow.status not in APPROVE_FROM:
        return False
    open_ids = {m.pk for m in facts.milestones if m.status in OPEN_MILESTONE_STATUSES}
    return bool(open_ids - facts.disputed_ids)


def _link_possible(actor: Actor, facts: EscrowFacts) -> bool:
    return facts.escrow.status in UPLOAD_LINK_FROM and any(
        m.status in OPEN_MILESTONE_STATUSES for m in facts.milestones)


def _predicate(may: Callable[[Actor, EscrowAgreement, EscrowFacts], bool]) -> Rule:
    return lambda actor, facts: may(actor, facts.escrow, facts)


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
    "dispute": EscrowAction(PARTIES, provider_may=True, allowed_now=_predicate(may_dispute)),
    "refund": EscrowAction(SENDER_OR_ADMIN, provider_may=False, allowed_now=_predicate(may_refund)),
    "cancel": EscrowAction(SENDER_OR_ADMIN, provider_may=False, allowed_now=_predicate(may_cancel)),
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
    (milestones prefetched; the open dispute read once, only when a rule asks)."""
    facts = EscrowFacts(escrow)
    return [name for name, action in ACTIONS.items()
            if actor.scopes & action.scopes and _is_party(escrow, actor, action)
            and action.allowed_now(actor, facts)]
