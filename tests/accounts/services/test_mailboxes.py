"""accounts/services/mailboxes.py: mailboxes within the plan, their passwords and quotas."""

import shutil
import subprocess

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditEntry, Domain, Mailbox
from accounts.services.mailboxes import mailbox_create, mailbox_set_password, mailbox_update
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db
GOOD = "a long enough secret"


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
