"""Back-office roles: the staff groups and the admin permissions each holds.

Staff users (``is_staff``) log into the admin; what they see and may do there
is the union of their groups' permissions:

* ``Reviewer`` works the proof review queue: reads escrows, milestones,
  proofs, payments, the audit log and alerts; decides proofs, triages AI
  flags, acknowledges and resolves alerts.
* ``Operations`` has all of that, plus what re-runs machinery: reprocess a
  stored webhook, send a proof back to OCR or the AI advisor, retry a payout
  or a failed refund; and it works the dispute queue (resolves disputes).

Nothing here edits money, statuses or audit rows: the admin grants no
add/change/delete on them (the one "change" below, on outbound webhook
deliveries, is what ``webhooks.admin`` checks for its redeliver action; the
admin is read-only, so it edits nothing).

The groups are created by the data migration ``accounts/0002_admin_roles``
and updated by ``escrow/0004_dispute_roles`` (disputes and refunds); each
keeps its own copy of this table (a migration is a snapshot) and a test
checks that the latest agrees with it. ``sync_roles`` is idempotent.
"""

from __future__ import annotations

from django.apps import apps as global_apps

REVIEWER = "Reviewer"
OPERATIONS = "Operations"

_REVIEWER = (
    "escrow.view_escrowagreement",
    "escrow.view_milestone",
    "escrow.view_escrowevent",
    "proofs.view_proof",
    "proofs.decide_proof",
    "proofs.triage_ai_flags",
    "payments.view_payment",
    "audit.view_auditlog",
    "audit.view_alert",
    "audit.acknowledge_alert",
    "escrow.view_dispute",
    "escrow.view_refund",
)

ROLES: dict[str, tuple[str, ...]] = {
    REVIEWER: _REVIEWER,
    OPERATIONS: _REVIEWER + (
        "webhooks.view_inboundevent",
        "webhooks.reprocess_inboundevent",
        "events.view_event",
        "webhooks.view_webhookendpoint",
        "webhooks.view_webhookdelivery",
        "webhooks.change_webhookdelivery",  # what webhooks.admin's redeliver action checks
        "proofs.reprocess_proof",
        "payments.retry_payment",
        "escrow.resolve_dispute",  # support works the dispute queue
        "escrow.retry_refund",
    ),
}


def _create_permissions(apps) -> None:
    """Make sure every model's permissions exist. Django creates them after
    the last migration (post_migrate); a data migration that runs before
    then creates them itself, from the models as they are at that point."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        # Historical app configs (in a migration) have no models module, and
        # create_permissions skips an app without one.
        app_config.models_module = models_module or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = models_module


def sync_roles(apps=global_apps, roles: dict[str, tuple[str, ...]] = ROLES) -> None:
    """Create the groups and give each exactly its permissions."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    _create_permissions(apps)
    for name, wanted in roles.items():
        permissions = []
        for dotted in wanted:
            app_label, codename = dotted.split(".", 1)
            try:
                permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
            except Permission.DoesNotExist:
                raise LookupError(f"Role {name}: no permission {dotted}") from None
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
