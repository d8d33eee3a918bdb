"""Domain metrics for proofs: counters where the work happens, gauges computed at scrape time."""

from datetime import timedelta

from django.db.models import Count, Min, Q
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from kobatela.core import clock
from proofs.models import OcrStatus, Proof, ProofStatus

PROOFS_SUBMITTED = Counter("kobatela_proofs_submitted_total", "Proofs received, by type and outcome.", ["type", "outcome"])
PROOFS_DECIDED = Counter("kobatela_proofs_decided_total", "Proof decisions, by decision and who made them.", ["decision", "by"])
OCR_RUNS = Counter("kobatela_ocr_runs_total", "OCR jobs, by outcome.", ["outcome"])
OCR_SECONDS = Histogram("kobatela_ocr_seconds", "OCR job duration.", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
AI_CALLS = Counter("kobatela_ai_calls_total", "AI advisor calls, by outcome.", ["outcome"])
AI_SECONDS = Histogram("kobatela_ai_seconds", "AI advisor call duration.", buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30))


# --- Gauges computed at scrape time (registered in ProofsConfig.ready(); kobatela.core.metrics) ---

#: Upper bounds (seconds) of the age buckets of proofs waiting for review; the last bucket is open.
REVIEW_AGE_BUCKETS = (("lt_1h", 3600), ("1h_4h", 4 * 3600), ("4h_24h", 86400), ("1d_3d", 3 * 86400), ("gt_3d", None))


def proof_gauges():
    now = clock.now()
    bounds, lower = {}, None
    for label, upper in REVIEW_AGE_BUCKETS:
        condition = Q()
        if upper is not None:
            condition &= Q(created_at__gt=now - timedelta(seconds=upper))
        if lower is not None:
            condition &= Q(created_at__lte=now - timedelta(seconds=lower))
        bounds[label] = Count("pk", filter=condition)
        lower = upper
    pending = Proof.objects.filter(status=ProofStatus.PENDING).aggregate(**bounds)
    review = GaugeMetricFamily("kobatela_proofs_pending_review", "Proofs waiting for a reviewer, by age.", labels=["age"])
    for label, _ in REVIEW_AGE_BUCKETS:
        review.add_metric([label], pending[label])

    ocr = GaugeMetricFamily("kobatela_ocr_jobs", "Proofs by OCR state (QUEUED, RUNNING, FAILED).", labels=["status"])
    counts = dict(Proof.objects.filter(ocr_status__in=[OcrStatus.QUEUED, OcrStatus.RUNNING, OcrStatus.FAILED])
                  .values_list("ocr_status").annotate(n=Count("pk")).values_list("ocr_status", "n"))
    for status in (OcrStatus.QUEUED, OcrStatus.RUNNING, OcrStatus.FAILED):
        ocr.add_metric([status.value], counts.get(status, 0))
    oldest = Proof.objects.filter(ocr_status=OcrStatus.QUEUED).aggregate(t=Min("created_at"))["t"]
    ocr_age = GaugeMetricFamily("kobatela_ocr_oldest_queued_seconds", "Age of the oldest proof waiting for OCR; 0 when none.",
                                value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    return [review, ocr, ocr_age]
