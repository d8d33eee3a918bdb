"""Delivering events to integrators' endpoints.

How one delivery goes::

    emit() in the service's transaction   → Event; deliveries_create_for_event (its listener)
                                            → WebhookDelivery(PENDING, next_attempt_at=now)
    after commit: enqueue_on_commit(deliver_webhook, id)  (or, if that message is lost, the beat sweeper)
    delivery_attempt
        delivery_claim                      → one UPDATE … WHERE status=PENDING AND next_attempt_at<=now
                                              SET attempt=attempt+1, next_attempt_at=now+lease RETURNING attempt
        targets.target_for_delivery         → resolve the host, check every address (SSRF, DNS rebinding)
        transport.post                      → to the checked address; webhook-id = the event id
        _record_attempt                     → only if the row is still PENDING at this attempt
            2xx: SUCCEEDED · 410: FAILED and the endpoint disabled
            else: next_attempt_at = now + RETRY_SCHEDULE[attempt-1] ± 10 %, or FAILED after the last

The database row is the queue. The claim moves ``next_attempt_at`` one lease
ahead, so a second worker (a duplicate message, the sweeper) finds the row not
due and does nothing; a worker that dies after claiming leaves the row PENDING
and the sweeper sends it again once the lease has passed, under the same
``webhook-id`` (receivers deduplicate on it). A stale worker that finishes
after its lease was taken over records nothing (the attempt number moved on).
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import Counter, Histogram

from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict
from kobatela.core.queue import enqueue, enqueue_on_commit
from kobatela.core.transactions import service_transaction
from kobatela.events.models import Event
from kobatela.events.services import event_payload
from webhooks import signing, targets, transport
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbound.endpoints import endpoint_disable

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.tasks.deliver_webhook"

# outcome: succeeded, http_error (a non-2xx answer), gone (410), refused (URL/address
# policy), transport_error (timeout, connection, TLS), endpoint_disabled.
DELIVERY_ATTEMPTS = Counter(
    "kobatela_webhook_delivery_attempts_total",
    "Outbound webhook delivery attempts, by outcome.",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "kobatela_webhook_delivery_seconds",
    "Time to an HTTP answer of outbound webhook deliveries that got one.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)

# Standard Webhooks' schedule: after the first attempt, retries 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h and 10 h after the previous one (8 attempts, ~28 h).
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.10  # each delay is multiplied by a random factor in [0.9, 1.1]
# A claimed attempt is the claimer's for this long; it must outlast the request
# (WEBHOOK_TIMEOUT_SECONDS) by a margin. After it, the sweeper sends it again.
LEASE = timedelta(seconds=60)
DISABLE_AFTER = timedelta(days=5)  # of failures with no success: the endpoint is disabled (and an Alert raised)


# --------------------------------------------------------------------------- #
# Creating deliveries
# --------------------------------------------------------------------------- #


def create_deliveries(*, event: Event, endpoints: list[WebhookEndpoint], now=None) -> list[WebhookDelivery]:
    """PENDING deliveries of ``event``, due now, each sent by a task after commit."""
    now = now or timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now) for endpoint in endpoints
    )
    for delivery in deliveries:
        enqueue_on_commit(DELIVER_TASK, delivery.pk)
    return deliveries


def deliveries_create_for_event(event: Event) -> None:
    """The events layer's listener (``WebhooksConfig.ready``): in the transaction
    that records ``event``, one delivery per enabled endpoint of its account
    subscribed to its type."""
    endpoints = WebhookEndpoint.objects.filter(account_id=event.account_id, status=WebhookEndpoint.Status.ENABLED)
    create_deliveries(event=event, endpoints=[e for e in endpoints if e.subscribes_to(event.type)], now=event.created_at)


# --------------------------------------------------------------------------- #
# Redelivery
# --------------------------------------------------------------------------- #


def event_redeliver(*, actor: Actor, event: Event, endpoint_id: int | None = None) -> list[WebhookDelivery]:
    """New deliveries of an event (found through the actor's selector) to its
    account's enabled endpoints subscribed to its type, or to one of them.
    Same ``webhook-id`` as the first time: receivers deduplicate on it."""
    with service_transaction():
        endpoints = WebhookEndpoint.objects.filter(account_id=event.account_id, status=WebhookEndpoint.Status.ENABLED)
        if endpoint_id is not None:
            endpoints = endpoints.filter(pk=endpoint_id)
        chosen = [e for e in endpoints.order_by("pk") if e.subscribes_to(event.type)]
        if not chosen:
            raise Conflict("no_webhook_endpoint", "No enabled webhook endpoint of this account receives this event type.",
                           details={"type": event.type, "endpoint_id": endpoint_id})
        deliveries = create_deliveries(event=event, endpoints=chosen)
        audit.record(actor, "webhook_event.redelivery_requested", event,
                     {"type": event.type, "endpoints": [e.pk for e in chosen]})
    return deliveries


def delivery_redeliver(*, actor: Actor | str, delivery_id: int) -> WebhookDelivery | None:
    """Support's retry from the admin: a new delivery of the same event to the same
    endpoint, or ``None`` when that endpoint no longer receives (disabled or deleted)."""
    with service_transaction():
        delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
        if delivery.endpoint.status != WebhookEndpoint.Status.ENABLED:
            return None
        (new,) = create_deliveries(event=delivery.event, endpoints=[delivery.endpoint])
        audit.record(actor, "webhook_delivery.redelivery_requested", delivery,
                     {"event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id, "new_delivery_id": new.pk})
    return new


# --------------------------------------------------------------------------- #
# Delivering
# --------------------------------------------------------------------------- #


def retry_delay(attempt: int) -> timedelta:
    """Wait after failed attempt number ``attempt`` (1-based), jittered ±10 %."""
    base = RETRY_SCHEDULE[attempt - 1].total_seconds()
    return timedelta(seconds=base * random.uniform(1 - JITTER, 1 + JITTER))


def delivery_claim(delivery_id: int, *, now: datetime | None = None) -> int | None:
    """Take the due attempt of a delivery: its number, or ``None`` when the
    delivery is not PENDING or not due (someone else holds or finished it).

    One UPDATE decides: under concurrency PostgreSQL re-checks the WHERE on
    the row it locked, so exactly one claimer matches. It commits at once
    (autocommit), so the lease survives whatever happens to this worker next.
    """
    now = now or timezone.now()
    table = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    at = connection.ops.adapt_datetimefield_value  # as the ORM would write it (SQLite: naive UTC text)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET attempt = attempt + 1, next_attempt_at = %s, last_attempt_at = %s, updated_at = %s "
            f"WHERE id = %s AND status = %s AND next_attempt_at <= %s RETURNING attempt",
            [at(now + LEASE), at(now), at(now), delivery_id, str(WebhookDelivery.Status.PENDING), at(now)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def event_body(event: Event) -> bytes:
    """The exact bytes sent and signed: the EventRead JSON, compact, UTF-8."""
    return json.dumps(event_payload(event), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int | None
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _send(delivery: WebhookDelivery) -> AttemptResult:
    endpoint, event = delivery.endpoint, delivery.event
    body = event_body(event)
    headers = signing.signature_headers(secrets=endpoint.signing_secrets(timezone.now()), msg_id=str(event.pk),
                                        timestamp=int(time.time()), body=body)
    try:
        target = targets.target_for_delivery(endpoint.url)  # resolved and checked now, for this attempt
        response = transport.post(target, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except targets.TargetError as exc:
        DELIVERY_ATTEMPTS.labels("refused").inc()
        return AttemptResult(None, None, f"{exc.code}: {exc.message}")
    except transport.TransportError as exc:
        DELIVERY_ATTEMPTS.labels("transport_error").inc()
        return AttemptResult(None, exc.latency_ms, str(exc)[:500])
    DELIVERY_SECONDS.observe(response.latency_ms / 1000)
    succeeded = 200 <= response.status < 300
    DELIVERY_ATTEMPTS.labels("succeeded" if succeeded else "gone" if response.status == 410 else "http_error").inc()
    error = "" if succeeded else f"http_status: the endpoint answered {response.status}"
    return AttemptResult(response.status, response.latency_ms, error)


def delivery_attempt(*, delivery_id: int) -> str:
    """Send a due delivery once and record the outcome. Safe to call any number
    of times, from any number of workers: returns ``"not_due"`` unless this call
    claimed the attempt, ``"superseded"`` if the lease ran out before the
    outcome could be recorded, else the delivery's new status."""
    attempt = delivery_claim(delivery_id)
    if attempt is None:
        return "not_due"
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    if delivery.endpoint.status != WebhookEndpoint.Status.ENABLED:
        # Disabled or deleted after this delivery was queued (its pending rows were failed then).
        result = AttemptResult(None, None, "endpoint_disabled")
        DELIVERY_ATTEMPTS.labels("endpoint_disabled").inc()
    else:
        result = _send(delivery)
    if not result.succeeded:
        logger.info("webhook delivery attempt failed", extra={
            "delivery_id": delivery_id, "event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id,
            "attempt": attempt, "status_code": result.status_code, "error": result.error[:200]})
    return _record_attempt(delivery=delivery, attempt=attempt, result=result)


def _record_attempt(*, delivery: WebhookDelivery, attempt: int, result: AttemptResult) -> str:
    now = timezone.now()
    gone = result.status_code == 410
    endpoint_active = delivery.endpoint.status == WebhookEndpoint.Status.ENABLED
    if result.succeeded:
        status, next_attempt_at = WebhookDelivery.Status.SUCCEEDED, None
    elif gone or attempt >= MAX_ATTEMPTS or not endpoint_active:
        status, next_attempt_at = WebhookDelivery.Status.FAILED, None
    else:
        status, next_attempt_at = WebhookDelivery.Status.PENDING, now + retry_delay(attempt)
    with transaction.atomic():
        # Lock order: the endpoint, then its deliveries (as endpoint_disable does).
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        updated = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempt=attempt,
        ).update(
            status=status, next_attempt_at=next_attempt_at, last_status_code=result.status_code,
            last_duration_ms=result.latency_ms, last_error=result.error[:500],
            finished_at=None if status == WebhookDelivery.Status.PENDING else now, updated_at=now,
        )
        if not updated:
            return "superseded"
        if endpoint.status == WebhookEndpoint.Status.ENABLED and endpoint_active:
            _update_health(endpoint, result=result, gone=gone, now=now)
    return status


def _update_health(endpoint: WebhookEndpoint, *, result: AttemptResult, gone: bool, now: datetime) -> None:
    if result.succeeded:
        endpoint.failing_since = None
        endpoint.last_success_at = now
        endpoint.save(update_fields=["failing_since", "last_success_at", "updated_at"])
        return
    endpoint.failing_since = endpoint.failing_since or now
    endpoint.last_failure_at = now
    if gone:
        # 410 Gone: the integrator says this URL is no more (Standard Webhooks).
        endpoint_disable(endpoint, reason="The endpoint answered 410 Gone.", now=now)
    elif now - endpoint.failing_since >= DISABLE_AFTER:
        endpoint_disable(endpoint, reason=f"Every delivery failed since {endpoint.failing_since.isoformat()}.", now=now)
        audit.alert_raise(
            type="webhook_endpoint_disabled", actor=Actor.system("webhook_delivery"),
            message=f"Webhook endpoint #{endpoint.pk} of account #{endpoint.account_id} failed for "
                    f"{DISABLE_AFTER.days} days and was disabled.",
            data={"endpoint_id": endpoint.pk, "account_id": endpoint.account_id,
                  "failing_since": endpoint.failing_since.isoformat(), "last_error": result.error[:200]},
        )
    else:
        endpoint.save(update_fields=["failing_since", "last_failure_at", "updated_at"])


def deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit]
    )


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """The beat job's body: queue every due delivery — retries whose time has
    come, first attempts whose message was lost, attempts whose worker died
    (lease passed). Queuing one twice is harmless: only one task claims it."""
    due = deliveries_due(now=now)
    for delivery_id in due:
        enqueue(DELIVER_TASK, delivery_id)
    return len(due)
