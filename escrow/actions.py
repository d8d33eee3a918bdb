"""The states in which each escrow service acts, shared by the services (which
refuse any other state) and by the table of ``allowed_actions``
(``escrow.rules.ACTIONS``), so that the two can never disagree."""

from __future__ import annotations

from collections.abc import Iterable

from escrow.models import EscrowStatus, Milestone

# The states in which each service acts (the services refuse any other with 409 escrow_is_<status>).
DEPOSIT_FROM = (EscrowStatus.DRAFT,)
MARK_DELIVERED_FROM = (EscrowStatus.FUNDED,)
PROOFS_FROM = (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)
APPROVE_FROM = (EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)
REJECT_FROM = (EscrowStatus.RELEASABLE,)
UPLOAD_LINK_FROM = (EscrowStatus.DRAFT, EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)

# A milestone still to be proven (and approved): proofs, approvals and upload links are for these.
OPEN_MILESTONE_STATUSES = Milestone.OPEN_STATUSES


def current_milestone(milestones: Iterable[Milestone]) -> Milestone | None:
    """The lowest milestone not yet approved: the only one that accepts proofs."""
    for milestone in sorted(milestones, key=lambda m: m.idx):
        if milestone.status in OPEN_MILESTONE_STATUSES:
            return milestone
    return None
