"""Dovecot on the panel's database: a private Dovecot instance using the shipped configuration signs mailboxes
in over IMAP, enforces the panel's quota, and reports usage back through dovecot_quota."""

import time

import pytest
from django.db import connection

from accounts.models import DovecotQuota, Mailbox
from accounts.services.mailboxes import mailbox_create, mailbox_set_password, mailbox_update
from accounts.services.suspension import suspend
from accounts.services.tenants import reseller_create
from accounts.tasks import import_dovecot_quota
from tests.support.dovecot import Dovecot, running_dovecot
from tests.support.factories import PASSWORD, make_tenant

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: Dovecot reads the mailbox tables through its pgsql driver (run with DATABASE_URL=postgres://...)",
)
MESSAGE = b"From: a@example.net\r\nTo: info@dove.test\r\nSubject: hello\r\n\r\n" + b"x" * 5000 + b"\r\n"


@pytest.fixture
def dovecot():
    """A private Dovecot (tests/support/dovecot.py) using the shipped configuration."""
    with running_dovecot() as server:
        yield server


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_imap_signs_in_with_the_panel_password_only(dovecot):
    tenant = make_tenant("Dove", "dove.test")
    other = mailbox_create(actor=None, domain=tenant.domain, local_part="sales", password="another password 7")

    imap = dovecot.login("info@dove.test", PASSWORD)
    assert imap.select("INBOX")[0] == "OK"
    imap.logout()
    # Any case: the stored address is lower-case and the query lower-cases what is typed.
    dovecot.login("Sales@DOVE.test", "another password 7").logout()

    assert dovecot.refuses("info@dove.test", "wrong password")
    assert dovecot.refuses("info@dove.test", "another password 7")  # the other mailbox's password
    assert dovecot.refuses("nobody@dove.test", PASSWORD)
    assert dovecot.refuses("info", PASSWORD)

    mailbox_update(actor=None, mailbox=other, is_active=False)
    assert dovecot.refuses("sales@dove.test", "another password 7")
    dovecot.login("info@dove.test", PASSWORD).logout()

    # A changed password counts at once (no cache between the panel and Dovecot).
    mailbox_set_password(actor=None, mailbox=tenant.mailbox, password="a brand new password")
    assert dovecot.refuses("info@dove.test", PASSWORD)
    dovecot.login("info@dove.test", "a brand new password").logout()


@needs_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("suspended", ["domain", "customer", "reseller"])
def test_imap_refuses_mailboxes_of_suspended_domains_and_customers(dovecot, suspended):
    reseller = reseller_create(actor=None, name="Dove Reseller")
    tenant = make_tenant("Dove", "dove.test", reseller)
    dovecot.login("info@dove.test", PASSWORD).logout()
    if suspended == "reseller":
        # No suspend service for resellers yet: the status field is what the query reads.
        type(reseller).objects.filter(pk=reseller.pk).update(status="suspended")
    else:
        suspend(actor=None, obj=getattr(tenant, suspended), reason="unpaid invoice")
    assert dovecot.refuses("info@dove.test", PASSWORD)


def wait_for_quota_row(dovecot: Dovecot, username: str, timeout: float = 10.0) -> DovecotQuota:
    # quota_clone writes through the dict process as the IMAP session ends: shortly after LOGOUT returns.
    deadline = time.monotonic() + timeout
    while (row := DovecotQuota.objects.filter(username=username).first()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"Dovecot wrote no quota row for {username} in {timeout:g} s:\n{dovecot.log.read_text()}")
        time.sleep(0.1)
    return row


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_quota_limit_comes_from_the_panel_and_usage_flows_back(dovecot):
    tenant = make_tenant("Dove", "dove.test")
    mailbox_update(actor=None, mailbox=tenant.mailbox, quota_mb=20)

    imap = dovecot.login("info@dove.test", PASSWORD)
    typ, data = imap.getquotaroot("INBOX")
    assert typ == "OK"
    assert b"STORAGE 0 20480" in b" ".join(d for d in data[1] if isinstance(d, bytes)), data
    assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
    assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
    imap.logout()

    row = wait_for_quota_row(dovecot, "info@dove.test")
    assert (row.messages, row.bytes) == (2, 2 * len(MESSAGE))

    assert import_dovecot_quota() == 1
    mailbox = Mailbox.objects.get(pk=tenant.mailbox.pk)
    assert (mailbox.used_messages, mailbox.used_bytes) == (2, 2 * len(MESSAGE))
    assert mailbox.usage_updated_at is not None


@pytest.mark.django_db
def test_quota_import_copies_dovecot_rows_into_mailboxes(cast):
    DovecotQuota.objects.create(username="info@alpha.test", bytes=123456, messages=7)
    DovecotQuota.objects.create(username="INFO@bravo.test", bytes=99, messages=1)  # any case
    DovecotQuota.objects.create(username="gone@alpha.test", bytes=5, messages=1)  # deleted since: ignored

    assert import_dovecot_quota() == 2

    a, b, direct = (Mailbox.objects.get(pk=t.mailbox.pk) for t in (cast.a, cast.b, cast.direct))
    assert (a.used_bytes, a.used_messages) == (123456, 7)
    assert (b.used_bytes, b.used_messages) == (99, 1)
    assert (direct.used_bytes, direct.usage_updated_at) == (0, None)
    assert import_dovecot_quota() == 2  # runs again harmlessly
