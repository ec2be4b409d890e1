"""DKIM private keys stored before encryption at rest (PEM) are encrypted under DKIM_KEY_ENCRYPTION_KEY."""

from django.db import migrations


def encrypt_keys(apps, schema_editor):
    from accounts.dkim_keys import encrypt_private_key, is_encrypted

    Domain = apps.get_model("accounts", "Domain")
    for pk, stored in Domain.objects.exclude(dkim_private_key="").values_list("pk", "dkim_private_key").iterator():
        if not is_encrypted(stored):
            Domain.objects.filter(pk=pk).update(dkim_private_key=encrypt_private_key(stored))


def decrypt_keys(apps, schema_editor):
    from accounts.dkim_keys import decrypt_private_key, is_encrypted

    Domain = apps.get_model("accounts", "Domain")
    for pk, stored in Domain.objects.exclude(dkim_private_key="").values_list("pk", "dkim_private_key").iterator():
        if is_encrypted(stored):
            Domain.objects.filter(pk=pk).update(dkim_private_key=decrypt_private_key(stored))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(encrypt_keys, decrypt_keys, elidable=False)]
