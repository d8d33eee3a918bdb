"""Many pending proofs at once, for the queue's query-count tests and the
benchmark (``bench/admin_queue.py``).

Rows are written with ``bulk_create`` (a real submission runs OCR per file:
far too slow for 10,000), but they look like what the services leave: each
proof has its own funded escrow (with its deposit and the deposit's two
ledger lines, so the books still reconcile) and milestone (so a per-row query
would show), invoices carry document checks, a quarter of them is flagged by
the AI, ages spread over a week. The files do not exist: the queue never
opens them (thumbnails are separate requests, answered with a placeholder).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from escrow.models import EscrowAgreement, EscrowDeposit, EscrowStatus, Milestone, MilestoneStatus, ProofType
from payments.ledger import PSP_CLEARING, escrow_account
from payments.models import LedgerEntry
from proofs import review_priority
from proofs.models import AiStatus, OcrStatus, Proof, RiskLevel
from tests.factories import UserFactory

RISKS = [RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW, ""]
FLAGS = [["amount_mismatch"], ["supplier_unknown", "date_outside_window"], [], []]
CHECKS_FAIL = {"overall": "fail", "checks": {
    "amount": {"status": "fail", "expected": "100.00", "found": "120.00", "tolerance": "0.00"},
    "currency": {"status": "pass", "expected": "USD", "found": "USD"}}}
CHECKS_PASS = {"overall": "pass", "checks": {"amount": {"status": "pass", "expected": "100.00", "found": "100.00",
                                                        "tolerance": "0.00"}}}


def seed_pending_proofs(count: int, *, batch_size: int = 2000) -> list[int]:
    """``count`` PENDING proofs, each on its own escrow and milestone; returns their ids."""
    client, provider = UserFactory(), UserFactory()
    currencies = settings.ALLOWED_CURRENCIES
    deadline = timezone.now() + timedelta(days=30)
    tag = uuid.uuid4().hex[:12]
    escrows = EscrowAgreement.objects.bulk_create(
        [EscrowAgreement(client=client, provider=provider, amount_total=Decimal("100.00"),
                         amount_funded=Decimal("100.00"), currency=currencies[i % len(currencies)],
                         status=EscrowStatus.RELEASABLE, deadline_at=deadline) for i in range(count)],
        batch_size=batch_size)
    deposits = EscrowDeposit.objects.bulk_create(
        [EscrowDeposit(escrow=escrow, account=client, amount=escrow.amount_funded, idempotency_key=f"seed-{tag}-{i}")
         for i, escrow in enumerate(escrows)], batch_size=batch_size)
    LedgerEntry.objects.bulk_create(
        [LedgerEntry(movement=f"deposit:{deposit.pk}", kind=LedgerEntry.Kind.DEPOSIT, account=account, amount=amount,
                     currency=escrow.currency)
         for deposit, escrow in zip(deposits, escrows)
         for account, amount in ((PSP_CLEARING, -deposit.amount), (escrow_account(escrow.pk), deposit.amount))],
        batch_size=batch_size)
    milestones = Milestone.objects.bulk_create(
        [Milestone(escrow=escrow, idx=1, label="Delivery", amount=Decimal("100.00"),
                   status=MilestoneStatus.PENDING_REVIEW, proof_type=ProofType.INVOICE if i % 3 else ProofType.PHOTO,
                   proof_requirements={"expected_amount": "100.00", "currency": escrow.currency})
         for i, escrow in enumerate(escrows)],
        batch_size=batch_size)
    proofs = []
    for i, (escrow, milestone) in enumerate(zip(escrows, milestones)):
        photo = milestone.proof_type == ProofType.PHOTO
        risk = "" if photo else RISKS[i % 4]
        proofs.append(Proof(
            owner=client, escrow=escrow, milestone=milestone, type=milestone.proof_type,
            file=f"proofs/seed/{tag}-{i}.{'jpg' if photo else 'pdf'}",
            sha256=hashlib.sha256(f"{tag}-{i}".encode()).hexdigest(), size=12_345,
            content_type="image/jpeg" if photo else "application/pdf",
            validation={"errors": [], "warnings": [{"code": "gps_missing"}] if photo else []},
            ocr_status=OcrStatus.SKIPPED if photo else OcrStatus.DONE,
            invoice_amount=None if photo else Decimal("120.00" if i % 2 else "100.00"),
            invoice_currency="" if photo else escrow.currency, invoice_number="" if photo else f"INV-{tag}-{i}",
            backend_checks={} if photo else (CHECKS_FAIL if i % 2 else CHECKS_PASS),
            ai_status=AiStatus.NOT_APPLICABLE if photo else AiStatus.DONE, ai_risk_level=risk,
            ai_score=None if not risk else Decimal("0.900") if risk == RiskLevel.HIGH else Decimal("0.400"),
            ai_flags=[] if photo else FLAGS[i % 4], ai_explanation="" if photo else "Seeded for the queue.",
        ))
    for proof in proofs:
        review_priority.refresh(proof)  # as the services do whenever the checks change
    created = Proof.objects.bulk_create(proofs, batch_size=batch_size)
    ids = [proof.pk for proof in created]
    # auto_now_add stamped them all "now": spread them over a week, oldest first.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE proofs_proof SET created_at = created_at - (id %% 10080) * interval '1 minute' "
                       "WHERE id >= %s AND id <= %s", [min(ids), max(ids)])
    return ids
