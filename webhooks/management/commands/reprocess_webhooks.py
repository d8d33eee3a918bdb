from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from kobatela.core.actor import Actor
from kobatela.core.errors import DomainError
from webhooks.inbound import process as inbound
from webhooks.models import InboundEvent


class Command(BaseCommand):
    help = (
        "Process stored provider webhooks again (InboundEvent ids, or every FAILED one). "
        "Already processed events are left unchanged. Exits non-zero if any event still fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", dest="ids", type=int, nargs="+", action="extend", default=[], metavar="N",
                            help="InboundEvent id(s) (the admin's id column, not the provider's event id).")
        parser.add_argument("--all-failed", action="store_true", help="Every event whose status is FAILED.")

    def handle(self, *args, ids: list[int], all_failed: bool, **options):
        if not ids and not all_failed:
            raise CommandError("Give --id N [N ...] and/or --all-failed.")
        targets = list(dict.fromkeys(ids + (inbound.failed_inbound_event_ids() if all_failed else [])))
        if not targets:
            self.stdout.write("No failed events.")
            return
        actor = Actor.system("reprocess_webhooks")
        still_failing = 0
        for pk in targets:
            try:
                event = inbound.inbound_event_reprocess(pk, actor=actor)
            except DomainError as exc:
                still_failing += 1
                self.stdout.write(f"#{pk}: {exc.code}")
                continue
            line = f"#{event.pk} {event.provider}:{event.event_id} {event.event_type}: {event.status}"
            if event.status == InboundEvent.Status.PROCESSED:
                self.stdout.write(f"{line} (attempts: {event.attempts})")
            else:
                still_failing += 1
                self.stdout.write(f"{line} — {event.error} (attempts: {event.attempts})")
        if still_failing:
            raise CommandError(f"{still_failing} of {len(targets)} event(s) still failing.")
        self.stdout.write(self.style.SUCCESS(f"{len(targets)} event(s) processed."))
