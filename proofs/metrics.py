"""Domain metrics for proofs, exported on /metrics next to django-prometheus's own."""

from prometheus_client import Counter, Histogram

PROOFS_SUBMITTED = Counter("kobatela_proofs_submitted_total", "Proofs received, by type and outcome.", ["type", "outcome"])
PROOFS_DECIDED = Counter("kobatela_proofs_decided_total", "Proof decisions, by decision and who made them.", ["decision", "by"])
OCR_RUNS = Counter("kobatela_ocr_runs_total", "OCR jobs, by outcome.", ["outcome"])
OCR_SECONDS = Histogram("kobatela_ocr_seconds", "OCR job duration.", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
AI_CALLS = Counter("kobatela_ai_calls_total", "AI advisor calls, by outcome.", ["outcome"])
AI_SECONDS = Histogram("kobatela_ai_seconds", "AI advisor call duration.", buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30))
