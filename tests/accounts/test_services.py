import base64
import shutil
import subprocess
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_private_key
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEntry, Domain, Mailbox, SmtpCredential
from accounts.services.credentials import credential_create, credential_revoke
from accounts.services.domains import domain_create, domain_delete, domain_mark_verified
from accounts.services.mailboxes import mailbox_create, mailbox_set_password, mailbox_update
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db
GOOD = "a long enough secret"


# --- domains -----------------------------------------------------------------------------------------------


def test_domain_create_stores_the_lower_case_a_label_with_a_dkim_key_pair(cast):
    domain = domain_create(actor=cast.a.user, customer=cast.a.customer, name=" MÜNCHEN-Alpha.Test. ",
                           client_ip="192.0.2.1")
    assert domain.name == "xn--mnchen-alpha-dlb.test" and domain.unicode_name == "münchen-alpha.test"
    assert domain.status == Domain.DomainStatus.PENDING and not domain.is_verified and domain.verification_token
    private = load_pem_private_key(domain.dkim_private_key.encode(), password=None)
    public = load_der_public_key(base64.b64decode(domain.dkim_public_key))
    assert private.public_key().public_numbers() == public.public_numbers()
    entry = AuditEntry.objects.get(action="domain.create", object_id=str(domain.pk))
    assert entry.customer == cast.a.customer and entry.reseller == cast.reseller_a and entry.client_ip == "192.0.2.1"
    assert "dkim_private_key" not in entry.after and "PRIVATE KEY" not in str(entry.after)


@pytest.mark.parametrize("name", ["alpha.test", "ALPHA.TEST", "alpha.test."])
def test_domain_create_refuses_a_domain_registered_by_anyone(cast, name):
    with pytest.raises(ValidationError, match="already registered"):
        domain_create(actor=None, customer=cast.b.customer, name=name)


def test_domain_create_refuses_a_unicode_name_already_registered_as_its_a_label(cast):
    domain_create(actor=None, customer=cast.a.customer, name="xn--bcher-kva.test")
    with pytest.raises(ValidationError, match="already registered"):
        domain_create(actor=None, customer=cast.b.customer, name="Bücher.test")


def test_domain_create_stops_at_the_plans_limit_and_writes_nothing(cast):
    cast.a.customer.max_domains = 1
    cast.a.customer.save()
    with pytest.raises(ValidationError, match="Your plan allows 1 domains"):
        domain_create(actor=None, customer=cast.a.customer, name="two.test")
    assert not Domain.objects.filter(name="two.test").exists()
    assert not AuditEntry.objects.filter(object_repr="two.test").exists()


@pytest.mark.parametrize("name", ["", "nodot", "bad_label.test", "-x.test", "x-.test", "a..test", "1.2.3.4",
                                  "x" * 64 + ".test"])
def test_domain_create_refuses_invalid_names(cast, name):
    with pytest.raises(ValidationError):
        domain_create(actor=None, customer=cast.a.customer, name=name)


def test_domain_mark_verified_activates_once_and_audits_once(cast):
    domain = domain_create(actor=None, customer=cast.a.customer, name="proof.test")
    domain_mark_verified(actor=cast.a.user, domain=domain, client_ip="192.0.2.2")
    first = Domain.objects.get(pk=domain.pk)
    domain_mark_verified(actor=cast.a.user, domain=domain)
    again = Domain.objects.get(pk=domain.pk)
    assert first.status == Domain.DomainStatus.ACTIVE and first.verified_at == again.verified_at
    assert AuditEntry.objects.filter(action="domain.verify", object_id=str(domain.pk)).count() == 1


def test_domain_delete_removes_its_mailboxes_and_credentials_with_an_audit_entry(cast):
    credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    domain_pk = cast.a.domain.pk
    domain_delete(actor=cast.support, domain=cast.a.domain, client_ip="192.0.2.3")
    assert not Mailbox.objects.filter(domain_id=domain_pk).exists()
    assert not SmtpCredential.objects.filter(domain_id=domain_pk).exists()
    entry = AuditEntry.objects.get(action="domain.delete", object_id=str(domain_pk))
    assert entry.before["name"] == "alpha.test" and entry.actor == cast.support


# --- mailboxes -------------------------------------------------------------------------------------------------


def test_mailbox_hash_is_read_by_independent_implementations(cast):
    from passlib.hash import argon2

    mailbox = mailbox_create(actor=None, domain=cast.a.domain, local_part="Sales", password="pässwörd 2026")
    assert mailbox.local_part == "sales" and mailbox.password_hash.startswith("{ARGON2ID}$argon2id$")
    encoded = mailbox.password_hash.removeprefix("{ARGON2ID}")
    assert argon2.verify("pässwörd 2026", encoded) and not argon2.verify("wrong password", encoded)
    doveadm = shutil.which("doveadm")
    if doveadm is None:
        pytest.fail("doveadm is missing: install Debian's dovecot-core")
    ok = subprocess.run([doveadm, "pw", "-t", mailbox.password_hash, "-p", "pässwörd 2026"], capture_output=True)
    bad = subprocess.run([doveadm, "pw", "-t", mailbox.password_hash, "-p", "wrong password"], capture_output=True)
    assert ok.returncode == 0 and b"(verified)" in ok.stdout
    assert bad.returncode != 0


def test_two_mailboxes_with_one_password_get_different_salts(cast):
    one = mailbox_create(actor=None, domain=cast.a.domain, local_part="one", password=GOOD)
    two = mailbox_create(actor=None, domain=cast.a.domain, local_part="two", password=GOOD)
    assert one.password_hash != two.password_hash


@pytest.mark.parametrize("password, error", [
    ("short", "at least 10"), ("12345678901234", "more than digits"), ("the-sales-team-pw", "address in the password"),
    (" leading space pw", "start or end"),
])
def test_mailbox_password_rules(cast, password, error):
    with pytest.raises(ValidationError, match=error):
        mailbox_create(actor=None, domain=cast.a.domain, local_part="sales", password=password)
    assert not Mailbox.objects.filter(local_part="sales").exists()


def test_mailbox_create_enforces_mailbox_count_and_storage(cast):
    customer = cast.a.customer
    customer.max_mailboxes, customer.max_storage_mb = 2, 300
    customer.save()
    with pytest.raises(ValidationError, match="200 MB of storage left"):
        mailbox_create(actor=None, domain=cast.a.domain, local_part="big", password=GOOD, quota_mb=201)
    mailbox_create(actor=None, domain=cast.a.domain, local_part="fits", password=GOOD, quota_mb=200)
    with pytest.raises(ValidationError, match="Your plan allows 2 mailboxes"):
        mailbox_create(actor=None, domain=cast.a.domain, local_part="third", password=GOOD, quota_mb=1)


def test_mailbox_create_refuses_a_duplicate_address(cast):
    with pytest.raises(ValidationError, match="already exists"):
        mailbox_create(actor=None, domain=cast.a.domain, local_part="INFO", password=GOOD)


def test_mailbox_update_checks_storage_excluding_itself_and_audits_before_and_after(cast):
    cast.a.customer.max_storage_mb = 150
    cast.a.customer.save()
    mailbox = mailbox_update(actor=cast.a.user, mailbox=cast.a.mailbox, quota_mb=150, is_active=False,
                             client_ip="192.0.2.4")
    assert mailbox.quota_mb == 150 and not mailbox.is_active
    with pytest.raises(ValidationError, match="150 MB of storage left"):
        mailbox_update(actor=None, mailbox=mailbox, quota_mb=151)
    entry = AuditEntry.objects.get(action="mailbox.update", object_id=str(mailbox.pk))
    assert (entry.before["quota_mb"], entry.after["quota_mb"]) == (100, 150)
    assert entry.before["is_active"] is True and entry.after["is_active"] is False
    assert "password_hash" not in entry.before


def test_mailbox_update_refuses_fields_it_does_not_manage(cast):
    with pytest.raises(ValueError, match="password_hash"):
        mailbox_update(actor=None, mailbox=cast.a.mailbox, password_hash="x")


def test_mailbox_set_password_checks_rules_and_rehashes(cast):
    from accounts import hashing

    with pytest.raises(ValidationError):
        mailbox_set_password(actor=None, mailbox=cast.a.mailbox, password="short")
    mailbox_set_password(actor=None, mailbox=cast.a.mailbox, password=GOOD)
    stored = Mailbox.objects.get(pk=cast.a.mailbox.pk).password_hash
    assert hashing.check_hash(GOOD, stored) and not hashing.check_hash(PASSWORD, stored)
    entry = AuditEntry.objects.get(action="mailbox.password", object_id=str(cast.a.mailbox.pk))
    assert GOOD not in str(entry.before) + str(entry.after)


# --- SMTP credentials ----------------------------------------------------------------------------------------


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


def test_mailbox_quota_stays_within_the_domains_own_storage_share(cast):
    Domain.objects.filter(pk=cast.a.domain.pk).update(max_storage_mb=150)  # info@ holds 100 of it
    with pytest.raises(ValidationError, match="alpha.test has 50 MB of storage left"):
        mailbox_create(actor=None, domain=cast.a.domain, local_part="big", password=GOOD, quota_mb=51)
    mailbox_create(actor=None, domain=cast.a.domain, local_part="fits", password=GOOD, quota_mb=50)
    with pytest.raises(ValidationError, match="alpha.test has 100 MB of storage left"):
        mailbox_update(actor=None, mailbox=cast.a.mailbox, quota_mb=101)
    mailbox_update(actor=None, mailbox=cast.a.mailbox, quota_mb=100)


def test_mailbox_quota_cannot_go_below_what_it_stores(cast):
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(used_bytes=40 * 1024 * 1024 + 1)
    with pytest.raises(ValidationError, match="already stores 41 MB"):
        mailbox_update(actor=None, mailbox=cast.a.mailbox, quota_mb=40)
    assert mailbox_update(actor=None, mailbox=cast.a.mailbox, quota_mb=41).quota_mb == 41
