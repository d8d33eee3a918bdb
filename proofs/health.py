from django.conf import settings

from proofs import ocr
from proofs.models import OcrStatus, Proof
from proofs.services import ai_guard_state


def proofs_health() -> dict:
    """OCR and review-queue state for the detailed /health."""
    tesseract = ocr.tesseract_available()
    return {
        "ocr": "DISABLED" if not settings.OCR_ENABLED or not tesseract else "enabled",
        "tesseract_installed": tesseract,
        "ocr_queue": Proof.objects.filter(ocr_status__in=[OcrStatus.QUEUED, OcrStatus.RUNNING]).count(),
        "ocr_failed": Proof.objects.filter(ocr_status=OcrStatus.FAILED).count(),
        "pending_review": Proof.objects.filter(status=Proof.Status.PENDING).count(),
        # The AI advisor's circuit breaker and daily cap, shared by every worker (null without Redis).
        "ai_guard": ai_guard_state(),
    }
