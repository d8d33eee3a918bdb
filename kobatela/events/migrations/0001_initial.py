# The outbox moved here from the webhooks app (issue #11: events are a layer
# every domain app may import). The table already exists as webhooks_event:
# this migration only takes the model over in Django's state; 0002 renames
# the table once webhooks no longer claims the model.

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('webhooks', '0003_inboundevent_reprocess_permission'),
        # The staff roles were granted webhooks.view_event; they are created
        # first, and 0002 carries the permission over with the content type.
        ('accounts', '0002_admin_roles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Event',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('type', models.CharField(help_text='e.g. escrow.funded; see kobatela.events.catalogue.EVENT_TYPES.', max_length=64)),
                        ('object_type', models.CharField(help_text='escrow, payment, proof or mandate.', max_length=32)),
                        ('object_id', models.CharField(max_length=64)),
                        ('data', models.JSONField(encoder=django.core.serializers.json.DjangoJSONEncoder)),
                        ('context', models.JSONField(blank=True, default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder, help_text='What the resource alone does not say, e.g. which milestone.')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'ordering': ['-created_at', '-id'],
                        'db_table': 'webhooks_event',
                        'indexes': [
                            models.Index(fields=['account', '-created_at', '-id'], name='event_account_created_idx'),
                            models.Index(fields=['type', '-created_at'], name='event_type_created_idx'),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
