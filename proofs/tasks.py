from __future__ import annotations

from celery import shared_task

from kobatela.core.locks import periodic_job
from proofs import services


@shared_task(bind=True, acks_late=True, max_retries=services.OCR_MAX_ATTEMPTS)
def run_ocr(self, proof_id: int) -> str:
    """Idempotent: only a QUEUED (or stale RUNNING) proof is claimed."""
    try:
        return services.proof_run_ocr(proof_id=proof_id)
    except services.OcrRetryable as exc:
        raise self.retry(exc=exc, countdown=30 * 2**self.request.retries)


@shared_task(acks_late=True)
def run_ai(proof_id: int) -> str:
    """One attempt; the SDK does not retry either (max_retries=0): a failure is
    recorded on the proof, which stays in review, and `rerun_ai` can try again."""
    return services.proof_run_ai(proof_id=proof_id)


@shared_task
def sweep_ocr() -> int:
    with periodic_job("sweep_ocr") as acquired:
        return services.proofs_sweep_ocr() if acquired else 0
