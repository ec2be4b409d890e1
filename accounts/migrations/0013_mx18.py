from django.db import migrations, models


def first_row(apps, schema_editor):
    apps.get_model("accounts", "RouteGeneration").objects.get_or_create(pk=1)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0012_journeys21'),
    ]

    operations = [
        migrations.CreateModel(
            name='RouteGeneration',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('value', models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(first_row, migrations.RunPython.noop),
    ]
