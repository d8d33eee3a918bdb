from __future__ import annotations

from django.contrib import admin, messages

from kobatela.core.actor import Actor
from kobatela.core.admin_site import ReadOnlyAdminMixin
from kobatela.core.errors import DomainError
from kobatela.events.models import Event
from webhooks.inbound import process as inbound
from webhooks.models import InboundEvent, WebhookDelivery, WebhookEndpoint
from webhooks.outbound import delivery as outbound_delivery


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a stored webhook is evidence of what the provider said. Support
    acts on it only through the reprocess action, which calls the service.

    The status filter separates what is not ours (IGNORED) from what looks
    like ours and could not be applied (FAILED, with an alert when the event
    itself is unusable); ``reason`` says why for both."""

    list_display = ["id", "provider", "event_type", "event_id", "status", "reason", "attempts", "received_at",
                    "processed_at"]
    list_filter = ["provider", "status", "event_type"]
    search_fields = ["event_id"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in InboundEvent._meta.fields]
    actions = ["reprocess"]

    @admin.display(description="reason")
    def reason(self, obj: InboundEvent) -> str:
        return obj.error if len(obj.error) <= 120 else f"{obj.error[:119]}…"

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.reprocess_inboundevent")

    @admin.action(description="Reprocess selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        actor = Actor.staff(request.user)
        processed, ignored, failed, skipped = 0, 0, [], 0
        for pk, status in queryset.order_by("pk").values_list("pk", "status"):
            if status == InboundEvent.Status.PROCESSED:
                skipped += 1
                continue
            try:
                event = inbound.inbound_event_reprocess(pk, actor=actor)
            except DomainError as exc:  # the row vanished between listing and action
                failed.append(f"#{pk} ({exc.code})")
                continue
            if event.status == InboundEvent.Status.PROCESSED:
                processed += 1
            elif event.status == InboundEvent.Status.IGNORED:
                ignored += 1
            else:
                failed.append(f"#{pk} ({event.error.split(':', 1)[0]})")
        if processed:
            self.message_user(request, f"{processed} event(s) processed.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} event(s) were already processed; left unchanged.", messages.INFO)
        if ignored:
            self.message_user(request, f"{ignored} event(s) still ignored (not Kobatela events).", messages.INFO)
        if failed:
            self.message_user(request, f"{len(failed)} event(s) still failing: {', '.join(failed)}.", messages.ERROR)


# --------------------------------------------------------------------------- #
# Outbound: events, endpoints and deliveries (read-only; redeliver through the service)
# --------------------------------------------------------------------------- #


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "type", "account", "object_type", "object_id", "created_at"]
    list_filter = ["type", "object_type"]
    search_fields = ["id__exact", "=object_id", "account__email"]  # id__exact: compared as text, "abc" finds nothing
    date_hierarchy = "created_at"
    list_select_related = ["account"]
    readonly_fields = [f.name for f in Event._meta.fields]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Never shows the secrets (not even masked: their length would be noise)."""

    list_display = ["id", "account", "url", "status", "failing_since", "last_success_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["id__exact", "url", "account__email"]
    list_select_related = ["account"]
    exclude = ["secret", "previous_secret"]
    readonly_fields = [f.name for f in WebhookEndpoint._meta.fields if f.name not in ("secret", "previous_secret")]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "event_type", "event", "endpoint", "status", "attempt", "last_status_code",
                    "last_duration_ms", "last_error", "next_attempt_at", "last_attempt_at", "created_at"]
    list_filter = ["status", "event__type"]
    search_fields = ["id__exact", "event__id__exact", "endpoint__id__exact", "endpoint__url"]
    date_hierarchy = "created_at"
    list_select_related = ["event", "endpoint"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["redeliver"]

    @admin.display(description="type", ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    def has_redeliver_permission(self, request) -> bool:
        # Sends the event again: takes the model's "change" permission, which edits nothing here.
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Redeliver selected deliveries (new delivery, same webhook-id)", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        actor = Actor.staff(request.user)
        queued, skipped = 0, []
        for pk in queryset.order_by("pk").values_list("pk", flat=True):
            if outbound_delivery.delivery_redeliver(actor=actor, delivery_id=pk) is None:
                skipped.append(f"#{pk}")
            else:
                queued += 1
        if queued:
            self.message_user(request, f"{queued} delivery(ies) queued again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Not redelivered, endpoint disabled or deleted: {', '.join(skipped)}.",
                              messages.WARNING)
