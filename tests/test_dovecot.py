"""Dovecot on the panel's database: a private Dovecot instance using the shipped configuration signs mailboxes
in over IMAP, enforces the panel's quota, and reports usage back through dovecot_quota."""

import imaplib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import DovecotQuota, Mailbox
from accounts.services.mailboxes import mailbox_create, mailbox_set_password, mailbox_update
from accounts.services.suspension import suspend
from accounts.services.tenants import reseller_create
from accounts.tasks import import_dovecot_quota
from tests.peers import free_port, wait_for_port
from tests.support.factories import PASSWORD, make_tenant

DEPLOY = Path(__file__).resolve().parents[1] / "hostingmail" / "deploy" / "dovecot"
needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: Dovecot reads the mailbox tables through its pgsql driver (run with DATABASE_URL=postgres://...)",
)
MESSAGE = b"From: a@example.net\r\nTo: info@dove.test\r\nSubject: hello\r\n\r\n" + b"x" * 5000 + b"\r\n"


def binaries() -> dict[str, str]:
    found = {"dovecot": shutil.which("dovecot") or "/usr/sbin/dovecot"}
    for path, package in [(found["dovecot"], "dovecot-core"), ("/usr/lib/dovecot/imap", "dovecot-imapd"),
                          ("/usr/lib/dovecot/modules/auth/libdriver_pgsql.so", "dovecot-pgsql")]:
        if not os.path.exists(path):
            pytest.fail(f"Dovecot is not installed: install the Debian package {package} (.ci/peers does)")
    return found


def pg_connect() -> str:
    db = connection.settings_dict
    parts = {"host": db.get("HOST") or "127.0.0.1", "port": db.get("PORT") or 5432, "dbname": db["NAME"],
             "user": db.get("USER") or "postgres"}
    if db.get("PASSWORD"):
        parts["password"] = db["PASSWORD"]
    return "connect = " + " ".join(f"{k}={v}" for k, v in parts.items())


def install(conf_dir: Path, mail_dir: Path) -> None:
    """The shipped files, with only the connection and the paths pointed at this test's database and directory."""
    for name in ("dovecot-sql.conf.ext", "dovecot-dict-sql.conf.ext"):
        text = re.sub(r"^connect = .*$", pg_connect(), (DEPLOY / name).read_text(), flags=re.M)
        (conf_dir / name.replace("dovecot-", "hostingmail-")).write_text(text)
    snippet = (DEPLOY / "conf.d" / "90-hostingmail.conf").read_text()
    snippet = snippet.replace("/etc/dovecot/", f"{conf_dir}/").replace("/var/vmail/", f"{mail_dir}/")
    (conf_dir / "90-hostingmail.conf").write_text(snippet)


@pytest.fixture
def dovecot():
    """A private Dovecot (IMAP only, no TLS, on a free loopback port) using the shipped configuration."""
    dovecot_bin = binaries()["dovecot"]
    # Not under pytest's tmp_path: Dovecot's unprivileged processes must reach their sockets through every parent.
    root = Path(tempfile.mkdtemp(prefix="hm-dovecot-", dir="/tmp"))
    root.chmod(0o755)
    conf_dir, mail_dir = root / "etc", root / "vmail"
    conf_dir.mkdir()
    mail_dir.mkdir(mode=0o777)
    mail_dir.chmod(0o777)
    install(conf_dir, mail_dir)
    port = free_port()
    if os.getuid() == 0:
        # Dovecot's own unprivileged users (from dovecot-core); mail is stored as "dovecot", never as root.
        users, mail_user = "", pwd.getpwnam("dovecot")
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        users, mail_user = f"default_internal_user = {me}\ndefault_login_user = {me}\n", pwd.getpwuid(os.getuid())
    (conf_dir / "dovecot.conf").write_text(f"""\
instance_name = hm-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# Refusals answer at once: no delay after a failure, no growing per-address penalty (anvil) from loopback.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{users}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
!include {conf_dir}/90-hostingmail.conf
# After the shipped snippet: this machine has no vmail user.
mail_uid = {mail_user.pw_uid}
mail_gid = {mail_user.pw_gid}
first_valid_uid = {min(mail_user.pw_uid, 500)}
service dict {{
  unix_listener dict {{
    mode = 0666
    user =
    group =
  }}
}}
""")
    proc = subprocess.Popen([dovecot_bin, "-F", "-c", str(conf_dir / "dovecot.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = root / "dovecot.log"
    try:
        try:
            wait_for_port(port, proc=proc, timeout=20)
        except (RuntimeError, TimeoutError) as exc:
            output = proc.stdout.read().decode() if proc.poll() is not None else ""
            pytest.fail(f"Dovecot did not start: {exc}\n{output}\n{log.read_text() if log.exists() else ''}")
        yield Dovecot(port=port, log=log, mail_dir=mail_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)


class Dovecot:
    def __init__(self, *, port: int, log: Path, mail_dir: Path):
        self.port, self.log, self.mail_dir = port, log, mail_dir

    def login(self, username: str, password: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(username, password)
        except BaseException:
            imap.logout()
            raise
        return imap

    def refuses(self, username: str, password: str) -> bool:
        try:
            self.login(username, password).logout()
        except imaplib.IMAP4.error as exc:
            assert "AUTHENTICATIONFAILED" in str(exc) or "Authentication failed" in str(exc), self.log.read_text()
            return True
        return False


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


def wait_for_quota_row(dovecot: "Dovecot", username: str, timeout: float = 10.0) -> DovecotQuota:
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
