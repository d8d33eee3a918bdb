"""The back office's roles gain disputes and refunds (kobatela.accounts.roles):
Reviewer and Operations see them; Operations resolves disputes and retries
failed refunds.

The table below is this migration's own copy (a migration is a snapshot);
tests/admin checks that it agrees with ``roles.ROLES``. Reversed, the roles
go back to ``accounts/0002_admin_roles``' table.
"""

import importlib

from django.db import migrations

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
ROLES = {
    "Reviewer": _REVIEWER,
    "Operations": _REVIEWER + (
        "webhooks.view_inboundevent",
        "webhooks.reprocess_inboundevent",
        "events.view_event",
        "webhooks.view_webhookendpoint",
        "webhooks.view_webhookdelivery",
        "webhooks.change_webhookdelivery",
        "proofs.reprocess_proof",
        "payments.retry_payment",
        "escrow.resolve_dispute",
        "escrow.retry_refund",
    ),
}


def add_dispute_roles(apps, schema_editor):
    from kobatela.accounts.roles import sync_roles

    sync_roles(apps, ROLES)


def previous_roles(apps, schema_editor):
    from kobatela.accounts.roles import sync_roles

    before = importlib.import_module("kobatela.accounts.migrations.0002_admin_roles").ROLES
    moved = {"webhooks.view_event": "events.view_event"}  # see tests/admin/test_admin_roles.py
    sync_roles(apps, {name: tuple(moved.get(p, p) for p in perms) for name, perms in before.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0003_disputes_refunds_inspection"),
        ("accounts", "0002_admin_roles"),
        ("events", "0002_event_table_name"),
    ]

    operations = [migrations.RunPython(add_dispute_roles, previous_roles)]
