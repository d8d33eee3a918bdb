"""The back office's staff groups, Reviewer and Operations (kobatela.accounts.roles).

The table below is this migration's own copy: a migration must keep doing
what it did when the database it runs on is new, whatever ROLES says later.
A change of roles ships with a new migration calling ``sync_roles`` again;
tests/admin checks that this copy and ``roles.ROLES`` agree.
"""

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
)
ROLES = {
    "Reviewer": _REVIEWER,
    "Operations": _REVIEWER + (
        "webhooks.view_inboundevent",
        "webhooks.reprocess_inboundevent",
        "webhooks.view_event",
        "webhooks.view_webhookendpoint",
        "webhooks.view_webhookdelivery",
        "webhooks.change_webhookdelivery",
        "proofs.reprocess_proof",
        "payments.retry_payment",
    ),
}


def create_roles(apps, schema_editor):
    from kobatela.accounts.roles import sync_roles

    sync_roles(apps, ROLES)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("escrow", "0002_escrowdeposit_deposit_psp_ref_unique"),
        ("proofs", "0002_proof_admin_review"),
        ("payments", "0004_payment_retry_permission"),
        ("audit", "0002_alert_permissions"),
        ("webhooks", "0003_inboundevent_reprocess_permission"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
