"""The queue's rows change at every delivery step: fewer indexes on what changes, and room on each page for the
new row version.

A row whose indexed columns do not change is updated in place on its page (PostgreSQL's heap-only tuples, HOT)
with no new index entry, provided the page has room: a claim (lease columns) and a recipient's outcome then touch
no index at all, instead of every index of the table (among them two trigram GIN indexes). `state` and
`next_attempt_at` stay indexed together.
"""

import django.utils.timezone
from django.db import migrations, models

# Percent of each page filled by inserts; the rest keeps the next versions of its rows.
FILLFACTOR = 80
TABLES = ("relay_queuedmessage", "relay_recipient")


def set_fillfactor(apps, schema_editor, value=FILLFACTOR):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = {value})")


def reset_fillfactor(apps, schema_editor):
    set_fillfactor(apps, schema_editor, value=100)


class Migration(migrations.Migration):

    dependencies = [
        ('relay', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='queuedmessage',
            name='next_attempt_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='queuedmessage',
            name='state',
            field=models.CharField(choices=[('queued', 'Queued'), ('deferred', 'Deferred'), ('delivered', 'Delivered'), ('bounced', 'Bounced'), ('partial', 'Partly bounced'), ('held', 'Held'), ('cancelled', 'Cancelled')], default='queued', max_length=10),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=True),
    ]
