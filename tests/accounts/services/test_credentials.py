"""accounts/services/credentials.py: SMTP credentials, their secrets and revocation."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEntry, SmtpCredential
from accounts.services.credentials import credential_create, credential_revoke

pytestmark = pytest.mark.django_db


def test_credential_create_returns_the_secret_once_and_stores_a_hash(cast):
    from accounts import hashing

    new = credential_create(actor=cast.a.user, domain=cast.a.domain, mailbox=cast.a.mailbox,
                            description="shop", allowed_networks="192.0.2.7 10.0.0.0/8,2001:db8::/32",
                            client_ip="192.0.2.5")
    credential = SmtpCredential.objects.get(pk=new.credential.pk)
    assert "@" not in credential.username and credential.customer == cast.a.customer
    assert new.secret not in credential.secret_hash and hashing.check_hash(new.secret, credential.secret_hash)
    assert credential.allowed_networks.split("\n") == ["192.0.2.7/32", "10.0.0.0/8", "2001:db8::/32"]
    assert credential.created_by == cast.a.user
    entry = AuditEntry.objects.get(action="credential.create", object_id=str(credential.pk))
    assert "secret_hash" not in entry.after and new.secret not in str(entry.after)


def test_a_credential_secret_is_stored_as_an_hmac_under_the_settings_key(cast, settings):
    import hashlib
    import hmac

    from accounts import hashing

    settings.SMTP_CREDENTIAL_HASH_SECRET = "a key kept outside the database"
    new = credential_create(actor=None, domain=cast.a.domain)
    assert len(new.secret) >= 32  # 192 random bits, URL-safe base64
    key_id, _, digest = new.credential.secret_hash.removeprefix("{HMAC-SHA256}").partition("$")
    assert new.credential.secret_hash.startswith("{HMAC-SHA256}") and len(key_id) == 8
    assert digest == hmac.new(b"a key kept outside the database", new.secret.encode(), hashlib.sha256).hexdigest()
    assert hashing.check_hash(new.secret, new.credential.secret_hash)
    assert not hashing.check_hash(new.secret + "x", new.credential.secret_hash)
    settings.SMTP_CREDENTIAL_HASH_SECRET = "another key"
    assert not hashing.check_hash(new.secret, new.credential.secret_hash)


def test_credential_create_refuses_bad_scope_networks_and_expiry(cast):
    with pytest.raises(ValidationError, match="not in this domain"):
        credential_create(actor=None, domain=cast.a.domain, mailbox=cast.b.mailbox)
    with pytest.raises(ValidationError, match="“10.0.0.0/40” is not an IP address"):
        credential_create(actor=None, domain=cast.a.domain, allowed_networks="10.0.0.0/40")
    with pytest.raises(ValidationError, match="must be in the future"):
        credential_create(actor=None, domain=cast.a.domain, expires_at=timezone.now() - timedelta(minutes=1))
    assert not SmtpCredential.objects.exists()


def test_credential_revoke_disables_and_audits(cast):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    revoked = credential_revoke(actor=cast.a.user, credential=credential, client_ip="192.0.2.6")
    assert revoked.revoked_at is not None and not revoked.is_active
    entry = AuditEntry.objects.get(action="credential.revoke", object_id=str(credential.pk))
    assert entry.before["is_active"] is True and entry.after["is_active"] is False and entry.client_ip == "192.0.2.6"
