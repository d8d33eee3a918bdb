from __future__ import annotations

from django.contrib import admin, messages

from kobatela.accounts.actor import Actor
from kobatela.core.errors import DomainError
from webhooks import services
from webhooks.models import InboundEvent


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    """Read-only: a stored webhook is evidence of what the provider said. Support
    acts on it only through the reprocess action, which calls the service."""

    list_display = ["id", "provider", "event_type", "event_id", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["provider", "status", "event_type"]
    search_fields = ["event_id"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in InboundEvent._meta.fields]
    actions = ["reprocess"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_reprocess_permission(self, request) -> bool:
        # Reprocessing moves money: it takes the model's "change" permission,
        # which here edits nothing and only grants this action.
        return request.user.has_perm("webhooks.change_inboundevent")

    @admin.action(description="Reprocess selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        actor = Actor.staff(request.user)
        processed, failed, skipped = 0, [], 0
        for pk, status in queryset.order_by("pk").values_list("pk", "status"):
            if status == InboundEvent.Status.PROCESSED:
                skipped += 1
                continue
            try:
                event = services.inbound_event_reprocess(pk, actor=actor)
            except DomainError as exc:  # the row vanished between listing and action
                failed.append(f"#{pk} ({exc.code})")
                continue
            if event.status == InboundEvent.Status.PROCESSED:
                processed += 1
            else:
                failed.append(f"#{pk} ({event.error.split(':', 1)[0]})")
        if processed:
            self.message_user(request, f"{processed} event(s) processed.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} event(s) were already processed; left unchanged.", messages.INFO)
        if failed:
            self.message_user(request, f"{len(failed)} event(s) still failing: {', '.join(failed)}.", messages.ERROR)
