# The Event model now belongs to kobatela.events (see events/0001): state only,
# the table and its rows stay where they are.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0003_inboundevent_reprocess_permission'),
        ('events', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='webhookdelivery',
                    name='event',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='events.event'),
                ),
                migrations.DeleteModel(name='Event'),
            ],
            database_operations=[],
        ),
    ]
