"""Payee verification: ``User.payout_status`` and the run of failed payouts.

Accounts that exist when this runs become ``verified``: they were paid before
payee verification existed, and pausing every live provider at deploy would
stop money nobody decided to stop. New accounts start as
``PAYOUT_STATUS_DEFAULT`` (``unverified`` unless configured). Reversible:
going back drops the two columns.
"""

from django.db import migrations, models

import kobatela.accounts.models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_admin_roles")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="payout_failures_in_row",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        # Existing rows get "verified" (the column default used once, for them) …
        migrations.AddField(
            model_name="user",
            name="payout_status",
            field=models.CharField(
                choices=[("unverified", "Unverified"), ("verified", "Verified"), ("paused", "Paused")],
                default="verified", max_length=16,
            ),
            preserve_default=False,
        ),
        # … new ones the configured default.
        migrations.AlterField(
            model_name="user",
            name="payout_status",
            field=models.CharField(
                choices=[("unverified", "Unverified"), ("verified", "Verified"), ("paused", "Paused")],
                default=kobatela.accounts.models.default_payout_status,
                help_text="Payouts to this account leave only when verified (support, or the PSP's account.verified).",
                max_length=16,
            ),
        ),
    ]
