"""Inbound mail into real mailboxes: a message sent to the MX is stored, a worker hands it to a private Dovecot
over LMTP (the shipped configuration), and it is read back over IMAP — headers, 8-bit body and SMTPUTF8 intact;
per-recipient LMTP replies after DATA; 4xx retried on the delivery schedule; 5xx reported only to an
authenticated sender."""

import email
import email.policy
import imaplib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Mailbox
from accounts.services.mailboxes import mailbox_update
from relay.delivery import attempts
from relay.models import QueuedMessage, Recipient
from tests.peers import free_port
from tests.support.dovecot import running_dovecot
from tests.support.factories import PASSWORD
from tests.support.inbound import mta_client
from tests.support.smtp import send

pytestmark = pytest.mark.django_db(transaction=True)
needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql",
                                      reason="Dovecot reads the mailbox tables through its pgsql driver")

SENDER = "someone@sender.example"


@pytest.fixture
def dovecot(settings):
    with running_dovecot() as server:
        settings.LMTP_URL = str(server.lmtp_socket)
        yield server


@pytest.fixture
def mx(mx_factory, cast, dns_server):
    # sender.example publishes SPF for loopback: mail from it is authenticated.
    dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all", "forged.example,v=spf1 -all"])
    return mx_factory()


def receive(mx, *, sender=SENDER, recipients=("info@alpha.test",), data: bytes, mail_options="") -> QueuedMessage:
    with mta_client(mx.port, starttls=True) as client:
        replies = send(client, sender=sender, recipients=list(recipients), data=data, mail_options=mail_options)
    assert replies[-1][0] == 250, replies
    return QueuedMessage.objects.get(queue_id=replies[-1][1].decode().rpartition(" ")[2])


def fetch_all(dovecot, address: str, folder: str = "INBOX") -> list[email.message.EmailMessage]:
    imap = dovecot.login(address, PASSWORD)
    try:
        typ, _ = imap.select(folder)
        if typ != "OK":
            return []
        _, data = imap.search(None, "ALL")
        messages = []
        for number in data[0].split():
            _, parts = imap.fetch(number, "(RFC822)")
            messages.append(email.message_from_bytes(parts[0][1], policy=email.policy.default))
        return messages
    finally:
        imap.logout()


@needs_postgresql
def test_message_to_the_mx_is_read_back_over_imap_with_headers_and_8bit_body(dovecot, mx, cast):
    body = "Grüße aus Köln — 8-bit, not encoded.\r\n".encode() + b"line %d\r\n" * 0 + b"".join(
        b"line %d of the body, kept exactly\r\n" % n for n in range(200))
    data = (b"From: Someone <someone@sender.example>\r\nTo: info@alpha.test\r\nSubject: inbound over LMTP\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            b"\r\n" + body)
    message = receive(mx, data=data, mail_options="BODY=8BITMIME")
    assert message.sender_authenticated  # SPF pass for sender.example from 127.0.0.1

    assert attempts.deliver(message.pk) == QueuedMessage.State.DELIVERED
    recipient = message.recipients.get()
    assert (recipient.state, recipient.last_code) == (Recipient.State.DELIVERED, 250)
    assert recipient.remote_host.startswith("lmtp:")

    [received] = fetch_all(dovecot, "info@alpha.test")
    assert received["Subject"] == "inbound over LMTP"
    results = received["Authentication-Results"]
    assert results.startswith("mx.example.net;") and "spf=pass" in results, results
    # Dovecot's own Received (LMTP) on top, then the MX's.
    assert any(r.startswith("from mta.sender.example ([127.0.0.1])") for r in received.get_all("Received"))
    assert received.get_payload(decode=True) == body
    assert "X-Spam-Flag" not in received


@needs_postgresql
def test_smtputf8_sender_and_headers_arrive_intact(dovecot, mx, cast):
    sender = "jörg@sender.example"
    data = ("From: Jörg <jörg@sender.example>\r\nTo: info@alpha.test\r\nSubject: Grüße\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo, wie geht's? ✓\r\n").encode()
    with mta_client(mx.port, starttls=True) as client:
        assert "SMTPUTF8" in client.ehlo_resp.decode()
        client.command_encoding = "utf-8"
        replies = send(client, sender=sender, recipients=["info@alpha.test"], data=data,
                       mail_options="SMTPUTF8 BODY=8BITMIME")
    assert replies[-1][0] == 250, replies
    message = QueuedMessage.objects.get()
    assert message.mail_from == sender
    assert attempts.deliver(message.pk) == QueuedMessage.State.DELIVERED, message.recipients.get().last_reply

    imap = dovecot.login("info@alpha.test", PASSWORD)
    imap.select("INBOX")
    _, parts = imap.fetch(b"1", "(RFC822)")
    imap.logout()
    raw = parts[0][1]
    assert "From: Jörg <jörg@sender.example>\r\n".encode() in raw
    assert "Subject: Grüße\r\n".encode() in raw
    assert raw.endswith("Hallo, wie geht's? ✓\r\n".encode())


@needs_postgresql
def test_one_lmtp_transaction_reads_each_recipients_reply(dovecot, mx, cast):
    # Bravo's mailbox is allowed 1 MB by Dovecot: the 1.5 MB message fits Alpha's and not Bravo's. The panel's
    # usage says both are empty, so the MX takes it for both; Dovecot answers per recipient after DATA.
    mailbox_update(actor=None, mailbox=cast.b.mailbox, quota_mb=1)
    data = (f"From: {SENDER}\r\nTo: info@alpha.test, info@bravo.test\r\nSubject: big\r\n\r\n").encode() + (
        b"x" * 998 + b"\r\n") * 1500
    message = receive(mx, recipients=["info@alpha.test", "info@bravo.test"], data=data)

    assert attempts.deliver(message.pk) == QueuedMessage.State.PARTIAL
    alpha, bravo = message.recipients.order_by("address")
    assert (alpha.state, alpha.last_code) == (Recipient.State.DELIVERED, 250)
    assert (bravo.state, bravo.last_code, bravo.last_status) == (Recipient.State.BOUNCED, 552, "5.2.2"), bravo.last_reply
    assert len(fetch_all(dovecot, "info@alpha.test")) == 1
    assert fetch_all(dovecot, "info@bravo.test") == []
    # The sender passed SPF: it is told (one DSN, to it, from the null sender).
    dsn = QueuedMessage.objects.get(is_bounce=True)
    assert (dsn.mail_from, list(dsn.recipients.values_list("address", flat=True))) == ("", [SENDER])


@needs_postgresql
def test_a_permanent_lmtp_failure_is_not_reported_to_an_unauthenticated_sender(dovecot, mx, cast):
    message = receive(mx, sender="someone@forged.example", data=b"From: someone@forged.example\r\n\r\nhi\r\n")
    assert not message.sender_authenticated  # forged.example: SPF -all
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(is_active=False)  # disabled after acceptance: 550 5.1.1

    assert attempts.deliver(message.pk) == QueuedMessage.State.BOUNCED
    assert message.recipients.get().last_code == 550
    assert not QueuedMessage.objects.filter(is_bounce=True).exists()  # no backscatter


def test_lmtp_unreachable_is_retried_on_the_delivery_schedule(mx, cast, settings):
    settings.LMTP_URL = f"127.0.0.1:{free_port()}"  # nothing listens
    message = receive(mx, data=b"From: someone@sender.example\r\n\r\nhi\r\n")
    before = timezone.now()

    assert attempts.deliver(message.pk) == QueuedMessage.State.DEFERRED
    message.refresh_from_db()
    recipient = message.recipients.get()
    assert (recipient.state, recipient.last_status) == (Recipient.State.DEFERRED, "4.4.1")
    first_retry = timedelta(seconds=settings.DELIVERY_RETRY_SCHEDULE[0])
    assert before + first_retry - timedelta(seconds=5) <= message.next_attempt_at <= timezone.now() + first_retry


@needs_postgresql
def test_dmarc_quarantine_is_filed_into_junk(dovecot, mx_factory, cast, dns_server):
    dns_server(txt=["quarantined.example,v=spf1 -all", "_dmarc.quarantined.example,v=DMARC1; p=quarantine"])
    mx = mx_factory()
    message = receive(mx, sender="someone@quarantined.example",
                      data=b"From: someone@quarantined.example\r\nSubject: spoofed\r\n\r\nhi\r\n")
    assert attempts.deliver(message.pk) == QueuedMessage.State.DELIVERED
    assert fetch_all(dovecot, "info@alpha.test") == []
    [junk] = fetch_all(dovecot, "info@alpha.test", "Junk")
    assert junk["X-Spam-Flag"] == "YES" and "dmarc=fail" in junk["Authentication-Results"]
