"""Payout gauges for the web's /metrics, computed at scrape time (registered in
``PaymentsConfig.ready()``; see ``kobatela.core.metrics``)."""

from __future__ import annotations

from typing import Iterable

from django.db.models import Count, Min, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from kobatela.core import clock
from payments.models import Payment, PaymentStatus
from payments.payees import BLOCKED_NOT_VERIFIED, BLOCKED_PAUSED


def payout_gauges() -> Iterable[Metric]:
    by_status = GaugeMetricFamily("kobatela_payouts", "Payouts by status.", labels=["status"])
    counts = dict(Payment.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    for status in PaymentStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    given_up = GaugeMetricFamily("kobatela_payouts_given_up", "Payouts in ERROR that the sweeper no longer retries.",
                                 value=Payment.objects.filter(status=PaymentStatus.ERROR, gave_up_at__isnull=False).count())
    now = clock.now()
    oldest = Payment.objects.filter(
        Q(status=PaymentStatus.PENDING, blocked_reason="") | Q(status=PaymentStatus.ERROR, gave_up_at__isnull=True, next_attempt_at__lte=now)
    ).aggregate(pending=Min("created_at", filter=Q(status=PaymentStatus.PENDING)),
                retry=Min("next_attempt_at", filter=Q(status=PaymentStatus.ERROR)))
    stamps = [t for t in oldest.values() if t is not None]
    due_age = GaugeMetricFamily(
        "kobatela_payouts_oldest_due_seconds",
        "Age of the oldest payout waiting to be sent (PENDING and not blocked, or ERROR past its retry time); "
        "0 when none.",
        value=max(0.0, (now - min(stamps)).total_seconds()) if stamps else 0.0)
    blocked = GaugeMetricFamily("kobatela_payouts_blocked",
                                "PENDING payouts held by payee verification, by reason (payee_not_verified, payee_paused).",
                                labels=["reason"])
    waiting = dict(Payment.objects.filter(status=PaymentStatus.PENDING).exclude(blocked_reason="")
                   .values_list("blocked_reason").annotate(n=Count("pk")).values_list("blocked_reason", "n"))
    for reason in sorted({BLOCKED_NOT_VERIFIED, BLOCKED_PAUSED, *waiting}):
        blocked.add_metric([reason], waiting.get(reason, 0))
    oldest_blocked = Payment.objects.filter(status=PaymentStatus.PENDING).exclude(blocked_reason="") \
        .aggregate(t=Min("created_at"))["t"]
    blocked_age = GaugeMetricFamily(
        "kobatela_payouts_blocked_oldest_seconds",
        "Age of the oldest payout held by payee verification; 0 when none.",
        value=max(0.0, (now - oldest_blocked).total_seconds()) if oldest_blocked else 0.0)
    return [by_status, given_up, due_age, blocked, blocked_age]
