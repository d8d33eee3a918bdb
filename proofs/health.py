from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

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


def ai_guard_gauges():
    """The AI advisor's breaker and daily cap for /metrics, as shared in Redis
    (nothing without Redis); registered in ProofsConfig.ready()."""
    state = ai_guard_state()
    if state is None:
        return []
    breaker = GaugeMetricFamily("kobatela_ai_breaker_open", "1 when the AI advisor's circuit breaker is open or half-open.",
                                value=0 if state["breaker"]["state"] == "closed" else 1)
    used = GaugeMetricFamily("kobatela_ai_daily_calls", "AI advisor calls counted today (UTC) against the daily cap.",
                             value=state["daily_cap"]["used"])
    limit = GaugeMetricFamily("kobatela_ai_daily_call_limit", "The AI advisor's daily cap (AI_DAILY_CALL_LIMIT).",
                              value=state["daily_cap"]["limit"])
    return [breaker, used, limit]
