"""Every event type an integrator may receive (and subscribe to), with what it means."""

EVENT_TYPES: dict[str, str] = {
    "escrow.created": "An escrow was opened (DRAFT).",
    "escrow.funded": "Deposits reached the escrow's total (FUNDED).",
    "escrow.releasable": "A delivery was marked or a proof arrived (RELEASABLE).",
    "escrow.released": "Every milestone is paid (RELEASED).",
    "escrow.refunded": "What was left went back to the client (REFUNDED).",
    "escrow.cancelled": "The escrow was cancelled before funding (CANCELLED).",
    "milestone.approved": "A milestone was approved; its payout is created.",
    "milestone.rejected": "A milestone's proof was refused; a new proof may be sent.",
    "milestone.paid": "A milestone's payout settled (PAID).",
    "proof.submitted": "A proof was received.",
    "proof.approved": "A proof was approved (automatically or by a reviewer).",
    "proof.rejected": "A proof was rejected by a reviewer.",
    "proof.flagged": "The AI advisor scored a proof medium or high risk, or raised flags.",
    "payment.sent": "A payout was sent to the PSP.",
    "payment.settled": "The PSP paid the payout.",
    "payment.failed": "The payout failed (it may be retried).",
    "payment.refunded": "A settled payout came back.",
    "mandate.created": "A usage mandate was created.",
    "mandate.consumed": "A usage mandate's budget is used up.",
    "mandate.expired": "A usage mandate expired.",
}
