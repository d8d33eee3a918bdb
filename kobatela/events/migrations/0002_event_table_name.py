# webhooks_event → events_event, now that the model is this app's; its
# content type moves too, so its permissions (the Operations role's
# view_event) keep their ids and every group that holds them keeps them.

from django.db import migrations


def _move_content_type(apps, schema_editor, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=target, model="event").exists():
        ContentType.objects.filter(app_label=source, model="event").update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, "webhooks", "events")


def backwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, "events", "webhooks")


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0001_initial'),
        ('webhooks', '0004_event_moves_to_events'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.AlterModelTable(name='event', table=None),
        migrations.RunPython(forwards, backwards),
    ]
