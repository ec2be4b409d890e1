"""DKIM private keys at rest: encrypted under DKIM_KEY_ENCRYPTION_KEY, migrated, rotated."""

import importlib

import pytest
from cryptography.fernet import Fernet
from django.apps import apps as global_apps
from django.db import connection

from accounts.dkim_keys import DkimKeyError, decrypt_private_key, encrypt_private_key
from accounts.models import Domain
from accounts.services.domains import domain_create

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"


def test_a_new_domains_key_is_stored_encrypted_and_decrypts_to_pem(cast):
    domain = domain_create(actor=None, customer=cast.a.customer, name="keys.test")
    with connection.cursor() as cursor:  # the raw column, as a dump or the worker's plain SQL reads it
        cursor.execute("SELECT dkim_private_key FROM accounts_domain WHERE id = %s", [domain.pk])
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored and stored.startswith("gAAAAA")
    assert decrypt_private_key(stored).startswith("-----BEGIN RSA PRIVATE KEY-----")


def test_the_key_comes_from_settings_and_can_be_rotated(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DKIM_KEY_ENCRYPTION_KEY = [old]
    stored = encrypt_private_key(PEM)
    settings.DKIM_KEY_ENCRYPTION_KEY = [new, old]  # new first: encrypts; old still decrypts
    assert decrypt_private_key(stored) == PEM
    settings.DKIM_KEY_ENCRYPTION_KEY = [new]
    with pytest.raises(DkimKeyError):
        decrypt_private_key(stored)


def test_default_key_is_derived_from_secret_key(settings):
    settings.DKIM_KEY_ENCRYPTION_KEY = []
    stored = encrypt_private_key(PEM)
    assert decrypt_private_key(stored) == PEM
    settings.SECRET_KEY = "another secret key for this test only, long enough to be real"
    with pytest.raises(DkimKeyError):
        decrypt_private_key(stored)


def test_migration_encrypts_keys_stored_as_pem(cast):
    Domain.objects.filter(pk=cast.a.domain.pk).update(dkim_private_key=PEM)
    migration = importlib.import_module("accounts.migrations.0002_dkim_private_key_encrypted")
    migration.encrypt_keys(global_apps, None)
    stored = Domain.objects.values_list("dkim_private_key", flat=True).get(pk=cast.a.domain.pk)
    assert stored != PEM and decrypt_private_key(stored) == PEM
    others = Domain.objects.exclude(pk=cast.a.domain.pk).values_list("dkim_private_key", flat=True)
    assert all(not value.startswith("-----BEGIN") for value in others)
    migration.decrypt_keys(global_apps, None)
    assert Domain.objects.values_list("dkim_private_key", flat=True).get(pk=cast.a.domain.pk) == PEM
