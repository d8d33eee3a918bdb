"""Webhook gauges for the web's /metrics, computed at scrape time (registered in
``WebhooksConfig.ready()``; see ``kobatela.core.metrics``). The counters of
delivery attempts by outcome live where they happen (``webhooks.outbound.delivery``)."""

from __future__ import annotations

from typing import Iterable

from django.db.models import Count, Min
from prometheus_client.core import GaugeMetricFamily, Metric

from kobatela.core import clock
from webhooks.models import InboundEvent, WebhookDelivery


def webhook_gauges() -> Iterable[Metric]:
    deliveries = GaugeMetricFamily("kobatela_webhook_deliveries", "Outbound webhook deliveries by status.",
                                   labels=["status"])
    counts = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    for status in WebhookDelivery.Status.values:
        deliveries.add_metric([status], counts.get(status, 0))
    now = clock.now()
    oldest = (WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
              .aggregate(t=Min("next_attempt_at"))["t"])
    due_age = GaugeMetricFamily("kobatela_webhook_deliveries_oldest_due_seconds",
                                "How long the oldest due outbound delivery has been waiting; 0 when none.",
                                value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    inbound = GaugeMetricFamily("kobatela_inbound_events", "Stored inbound PSP events by status.", labels=["status"])
    counts = dict(InboundEvent.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    for status in InboundEvent.Status.values:
        inbound.add_metric([status], counts.get(status, 0))
    return [deliveries, due_age, inbound]
