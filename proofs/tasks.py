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


@shared_task(bind=True, acks_late=True, max_retries=services.AI_MAX_ATTEMPTS - 1)
def run_ai(self, proof_id: int) -> str:
    """Idempotent: only a QUEUED (or stale RUNNING) proof is claimed, so a
    redelivered message never calls the model a second time. The SDK does not
    retry (max_retries=0); a provider failure is recorded on the proof, which
    stays in review. An open breaker or a reached daily cap is retried with
    backoff (1, 2, 4, 8 min); the last attempt records it as FAILED."""
    # Run in-process (CELERY_TASK_ALWAYS_EAGER: make run, tests) there is no backoff to wait on: one attempt.
    final = self.request.is_eager or self.request.retries >= self.max_retries
    try:
        return services.proof_run_ai(proof_id=proof_id, final_attempt=final)
    except services.AiRetryable as exc:
        raise self.retry(exc=exc, countdown=60 * 2**self.request.retries)


@shared_task
def sweep_ocr() -> int:
    with periodic_job("sweep_ocr") as acquired:
        return services.proofs_sweep_ocr() if acquired else 0


@shared_task
def sweep_ai() -> int:
    with periodic_job("sweep_ai") as acquired:
        return services.proofs_sweep_ai() if acquired else 0
