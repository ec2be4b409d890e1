"""`manage.py sieve_sendmail`, Dovecot's sendmail_path for Sieve redirects: sendmail's command line and exit codes
(sysexits.h, which Dovecot reads), the copy queued and counted against the mailbox."""

import subprocess
import sys

import pytest

from accounts.models import SendUsage
from accounts.services.mailboxes import mailbox_update
from relay.models import QueuedMessage
from tests.support.relays import ROOT, child_env

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = b"From: someone@sender.example\nSubject: for the boss\n\nhi\n"


def sendmail(*args: str, message: bytes = MESSAGE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "sieve_sendmail", *args], input=message, cwd=ROOT,
                          env=child_env(), capture_output=True, timeout=60)


def test_a_redirect_is_queued_with_crlf_lines_and_counted(cast):
    done = sendmail("-i", "-f", "info@alpha.test", "--", "boss@example.org")
    assert done.returncode == 0, done.stderr
    copy = QueuedMessage.objects.get()
    assert (copy.mailbox_id, copy.mail_from, copy.subject) == (cast.a.mailbox.pk, "info@alpha.test", "for the boss")
    assert bytes(copy.content).endswith(b"Subject: for the boss\r\n\r\nhi\r\n")
    assert SendUsage.objects.filter(scope=SendUsage.Scope.MAILBOX, scope_id=cast.a.mailbox.pk).exists()


def test_exit_codes_dovecot_understands(cast):
    assert sendmail("-f", "nobody@alpha.test", "--", "boss@example.org").returncode == 67  # EX_NOUSER
    assert sendmail("-f", "info@alpha.test").returncode == 64  # EX_USAGE: no recipient
    mailbox_update(actor=None, mailbox=cast.a.mailbox, send_per_day=0)
    done = sendmail("-f", "info@alpha.test", "--", "boss@example.org")
    assert done.returncode == 75 and b"sending limit reached" in done.stderr  # EX_TEMPFAIL: retried later
    assert not QueuedMessage.objects.exists()


def test_the_shipped_wrapper_runs_this_command():
    wrapper = (ROOT / "hostingmail" / "deploy" / "dovecot" / "hostingmail-sieve-sendmail").read_text()
    assert 'manage.py sieve_sendmail "$@"' in wrapper
    conf = (ROOT / "hostingmail" / "deploy" / "dovecot" / "conf.d" / "90-hostingmail.conf").read_text()
    assert "sendmail_path = /usr/local/lib/hostingmail/sieve-sendmail" in conf
