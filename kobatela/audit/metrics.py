"""The audit seal lag for the web's /metrics, computed at scrape time from
:func:`kobatela.audit.chain.lag` (registered in ``AuditConfig.ready()``; see
``kobatela.core.metrics``) — so a stopped sealer shows a lag that grows, not the
last value a sealer run or a ``/health`` call happened to set."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from kobatela.audit.chain import lag


def audit_seal_gauges() -> Iterable[Metric]:
    state = lag()
    last = state["last_checkpoint_at"]
    checkpoint_age = (max(0.0, (timezone.now() - datetime.fromisoformat(last)).total_seconds()) if last else 0.0)
    return [
        GaugeMetricFamily("kobatela_audit_seal_lag_seconds",
                          "Age of the oldest audit row not sealed yet, in seconds (0: everything is sealed).",
                          value=state["lag_seconds"]),
        GaugeMetricFamily("kobatela_audit_unsealed_rows", "Audit rows written but not sealed yet.",
                          value=state["unsealed_rows"]),
        GaugeMetricFamily("kobatela_audit_last_checkpoint_age_seconds",
                          "Age of the latest signed audit checkpoint, in seconds; 0 when none was written yet.",
                          value=checkpoint_age),
    ]
