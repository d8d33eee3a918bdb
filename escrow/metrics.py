"""Gauges of the unhappy paths for the web's /metrics — disputes and refunds —
computed at scrape time (registered in ``EscrowConfig.ready()``; see ``kobatela.core.metrics``)."""

from __future__ import annotations

from typing import Iterable

from django.db.models import Count, Min
from prometheus_client.core import GaugeMetricFamily, Metric

from escrow.models import Dispute, DisputeStatus, Refund, RefundStatus
from kobatela.core import clock


def _age(oldest) -> float:
    return max(0.0, (clock.now() - oldest).total_seconds()) if oldest else 0.0


def dispute_gauges() -> Iterable[Metric]:
    open_ = Dispute.objects.filter(status=DisputeStatus.OPEN).aggregate(n=Count("pk"), oldest=Min("created_at"))
    return [
        GaugeMetricFamily("kobatela_disputes_open", "Disputes OPEN (their milestones hold their money).",
                          value=open_["n"]),
        GaugeMetricFamily("kobatela_disputes_oldest_open_seconds",
                          "Age of the oldest OPEN dispute, in seconds; 0 when none.", value=_age(open_["oldest"])),
    ]


def refund_gauges() -> Iterable[Metric]:
    by_status = GaugeMetricFamily("kobatela_refunds", "Refunds by status.", labels=["status"])
    counts = dict(Refund.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    for status in RefundStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    oldest = Refund.objects.filter(status__in=Refund.IN_FLIGHT).aggregate(t=Min("created_at"))["t"]
    in_flight = GaugeMetricFamily(
        "kobatela_refunds_oldest_pending_seconds",
        "Age of the oldest refund not settled yet (PENDING or SENT: the client has not got the money); 0 when none.",
        value=_age(oldest))
    return [by_status, in_flight]
