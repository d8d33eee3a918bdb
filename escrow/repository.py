"""The escrow rows locked, read and written on the deposit's measured path
(``make bench``), through ``kobatela.core.db``'s cached statements instead of
the ORM's compiler: one function per use, so that reach stays this small.
Everything else reads and writes through the ORM."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from escrow.models import EscrowAgreement, EscrowDeposit, EscrowEvent, Milestone
from kobatela.core import db


def escrow_row_lock(escrow_id: int, *, parties: dict[str, int] | None) -> EscrowAgreement | None:
    """``SELECT … FOR UPDATE`` of escrow ``escrow_id`` — only if one of ``parties``
    (``{"client_id": …, "provider_id": …}``) matches, when given — or None."""
    rows = db.select(EscrowAgreement, {"id": escrow_id}, any_of=parties, for_update=True)
    return rows[0] if rows else None


def escrow_milestones(escrow: EscrowAgreement) -> list[Milestone]:
    """The escrow's milestones, in order."""
    return db.select(Milestone, {"escrow_id": escrow.pk}, order_by=("idx",))


def escrow_event_insert(*, escrow: EscrowAgreement, kind: str, actor_label: str,
                        data: dict[str, Any] | None = None) -> EscrowEvent:
    [event] = db.insert([EscrowEvent(escrow=escrow, kind=kind, actor=actor_label, data=data or {})])
    return event


def escrow_deposit_insert(*, escrow: EscrowAgreement, account_id: int, amount: Decimal, idempotency_key: str,
                          source: str, psp_ref: str) -> EscrowDeposit:
    """Raises ``IntegrityError`` when the key (or PSP reference) is already a deposit's."""
    [deposit] = db.insert([EscrowDeposit(escrow=escrow, account_id=account_id, amount=amount,
                                         idempotency_key=idempotency_key, source=source, psp_ref=psp_ref)])
    return deposit


def escrow_funding_update(escrow: EscrowAgreement, *, status_changed: bool) -> None:
    """Write a deposit's effect on the (locked) escrow: its funded amount, and its status when it changed."""
    db.update(escrow, ["amount_funded", "updated_at", *(["status"] if status_changed else [])])
