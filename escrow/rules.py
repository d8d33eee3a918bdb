"""May this actor dispute, refund or cancel this escrow now? Pure predicates:
they read, never write nor lock, and answer with the refusal rules the
services apply under the escrow's lock (``escrow_dispute_refusal``,
``escrow_refund_refusal``, ``escrow_cancel_refusal``), so an action shown as
allowed is one the service would take at that moment. ``allowed_actions``
(EscrowRead, the providers branch) is built from them.
"""

from __future__ import annotations

from escrow.disputes import dispute_coverage, escrow_dispute_refusal
from escrow.models import DisputeParty, EscrowAgreement
from escrow.refunds import escrow_refund_refusal
from escrow.selectors import escrow_open_dispute, escrow_party_of
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
    if party is None:
        return False
    _, held = dispute_coverage(escrow, lock=False)
    return escrow_dispute_refusal(escrow, party=party, disputed=escrow_open_dispute(escrow.pk) is not None,
                                  coverable=held > 0) is None


def may_refund(actor: Actor, escrow: EscrowAgreement) -> bool:
    """The client (or an admin), with something refundable and no dispute open."""
    return _client_or_admin(actor, escrow) and escrow_refund_refusal(
        escrow, disputed=escrow_open_dispute(escrow.pk) is not None) is None


def may_cancel(actor: Actor, escrow: EscrowAgreement) -> bool:
    """The client (or an admin), on a DRAFT with nothing funded."""
    return _client_or_admin(actor, escrow) and escrow_cancel_refusal(escrow) is None
