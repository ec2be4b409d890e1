"""Automatic replies: what is never answered (RFC 3834 / RFC 5230), once per sender in N days, the reply's
headers, counted against the sending limits; and end to end, a message to the MX answered by the worker that
delivers it, for a mailbox and for an alias."""

import email
import email.policy
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry, AutoReplySent, SendUsage
from accounts.services.aliases import alias_create
from accounts.services.filters import auto_reply_save
from accounts.services.mailboxes import mailbox_update
from relay.delivery import attempts
from relay.delivery.autoreply import answer_due
from relay.models import AutoReplyDue, QueuedMessage
from relay.smtpd.tls import server_context
from tests.support.inbound import mta_client
from tests.support.mx import start_mx
from tests.support.smtp import send

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "someone@sender.example"


@pytest.fixture
def mx(mx_factory, cast, dns_server, settings):
    dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all"])
    settings.LMTP_URL = "127.0.0.1:9"  # nothing listens: local delivery is deferred, the reply goes all the same
    return mx_factory()


def away(owner, **options):
    return auto_reply_save(actor=None, owner=owner, enabled=True, subject="Out of office",
                           body="Back on Monday.\nUrgent: call the desk.", **options)


def receive(mx, *, sender=SENDER, to="info@alpha.test", headers="") -> QueuedMessage:
    data = (f"From: {sender or 'MAILER-DAEMON@sender.example'}\r\nTo: {to}\r\nSubject: question\r\n"
            f"Message-ID: <q1@sender.example>\r\nReferences: <q0@sender.example>\r\n{headers}\r\nHello?\r\n").encode()
    with mta_client(mx.port) as client:
        replies = send(client, sender=sender, recipients=[to], data=data)
    assert replies[-1][0] == 250, replies
    return QueuedMessage.objects.get(queue_id=replies[-1][1].decode().rpartition(" ")[2])


def replies() -> list[QueuedMessage]:
    return list(QueuedMessage.objects.filter(direction=QueuedMessage.Direction.OUTBOUND).order_by("id"))


def test_a_mailbox_answers_once_per_sender_through_the_outbound_queue(mx, cast):
    away(cast.a.mailbox)
    first = receive(mx)
    attempts.deliver(first.pk)
    [reply] = replies()
    assert (reply.mail_from, list(reply.recipients.values_list("address", flat=True))) == ("", [SENDER])
    assert (reply.customer_id, reply.mailbox_id, reply.subject) == (cast.a.customer.pk, cast.a.mailbox.pk,
                                                                    "Out of office")
    parsed = email.message_from_bytes(bytes(reply.content), policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-replied" and parsed["From"] == "info@alpha.test"
    assert parsed["In-Reply-To"] == "<q1@sender.example>"
    assert parsed["References"] == "<q0@sender.example> <q1@sender.example>"
    assert parsed.get_content() == "Back on Monday.\r\nUrgent: call the desk.\r\n"
    # Counted against the mailbox's sending limits like anything it sends.
    assert SendUsage.objects.filter(scope=SendUsage.Scope.MAILBOX, scope_id=cast.a.mailbox.pk).exists()
    assert not AutoReplyDue.objects.exists()

    attempts.deliver(receive(mx).pk)  # the same sender again: not answered within 7 days
    attempts.deliver(first.pk)  # a retried delivery answers nothing twice
    assert len(replies()) == 1
    # After the interval, answered again.
    AutoReplySent.objects.update(sent_at=timezone.now() - timedelta(days=8))
    attempts.deliver(receive(mx).pk)
    assert len(replies()) == 2


@pytest.mark.parametrize("sender, headers", [
    ("", ""),
    (SENDER, "Auto-Submitted: auto-generated\r\n"),
    (SENDER, "Precedence: bulk\r\n"),
    (SENDER, "List-Id: <news.sender.example>\r\n"),
    (SENDER, "List-Unsubscribe: <mailto:leave@sender.example>\r\n"),
    ("owner-news@sender.example", ""),
    ("info@alpha.test", ""),  # its own address
])
def test_never_answered(mx, cast, sender, headers):
    away(cast.a.mailbox)
    attempts.deliver(receive(mx, sender=sender, headers=headers).pk)
    assert replies() == []


def test_auto_submitted_no_is_answered(mx, cast):
    away(cast.a.mailbox)
    attempts.deliver(receive(mx, headers="Auto-Submitted: no\r\n").pk)
    assert len(replies()) == 1


def test_an_alias_answers_counted_against_its_domain(mx, cast):
    alias = alias_create(actor=None, domain=cast.a.domain, local_part="sales", destinations="info@alpha.test")
    away(alias)
    attempts.deliver(receive(mx, to="sales@alpha.test").pk)
    [reply] = replies()
    parsed = email.message_from_bytes(bytes(reply.content), policy=email.policy.default)
    assert parsed["From"] == "sales@alpha.test" and reply.mailbox_id is None and reply.domain_id == cast.a.domain.pk
    assert SendUsage.objects.filter(scope=SendUsage.Scope.DOMAIN, scope_id=cast.a.domain.pk).exists()


def test_outside_its_dates_or_over_the_sending_limit_nothing_is_sent(mx, cast):
    today = timezone.localdate()
    away(cast.a.mailbox, starts_on=today + timedelta(days=1), ends_on=today + timedelta(days=5))
    attempts.deliver(receive(mx).pk)
    assert replies() == []
    away(cast.a.mailbox)
    mailbox_update(actor=None, mailbox=cast.a.mailbox, send_per_hour=0)
    message = receive(mx)
    assert answer_due(message) == [] and replies() == []


def test_settings_are_checked_and_audited(cast):
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError) as caught:
        auto_reply_save(actor=None, owner=cast.a.mailbox, enabled=True, subject="a\r\nBcc: x@evil.test", body="",
                        starts_on=timezone.localdate(), ends_on=timezone.localdate() - timedelta(days=1))
    assert set(caught.value.message_dict) == {"subject", "body", "ends_on"}
    away(cast.a.mailbox)
    entry = AuditEntry.objects.get(action="mailbox.auto_reply")
    assert entry.after["subject"] == "Out of office" and entry.customer == cast.a.customer


def test_the_reply_reaches_the_senders_server_from_the_null_sender(mx_factory, cast, dns_server, settings,
                                                                   relay_cert):
    dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all"], mx=["sender.example,mx1.sender.example,10"],
               host=["mx1.sender.example,127.0.0.1"])
    settings.LMTP_URL = "127.0.0.1:9"
    remote = start_mx(tls_context=server_context(*relay_cert))
    settings.DELIVERY_PORT = remote.port
    try:
        away(cast.a.mailbox)
        attempts.deliver(receive(mx_factory()).pk)
        [reply] = replies()
        assert attempts.deliver(reply.pk) == QueuedMessage.State.DELIVERED
        [arrived] = remote.messages
    finally:
        remote.stop()
    assert arrived.mail_from == "<>" and arrived.rcpt_tos == [SENDER]
    assert arrived.message["Auto-Submitted"] == "auto-replied" and arrived.message["Subject"] == "Out of office"


def test_the_claim_says_whether_an_automatic_reply_waits_and_only_then_is_it_looked_up(cast, settings, monkeypatch):
    """Most inbound messages have no automatic reply to send: the claim already says so (one query less for them)."""
    from relay.delivery import autoreply
    from relay.inbound.accept import accept_inbound
    from tests.relay.delivery.test_lmtp_crash import inbound

    settings.LMTP_URL = "127.0.0.1:9"  # nothing listens: deferred, which is all this needs
    looked_up = []
    answer = autoreply.answer_due
    monkeypatch.setattr(autoreply, "answer_due", lambda message, **kw: looked_up.append(message.pk) or answer(
        message, **kw))
    [quiet] = accept_inbound([inbound(cast.b, "no reply on")])
    away(cast.a.mailbox)
    [answered] = accept_inbound([inbound(cast.a, "reply on")])
    assert attempts.claim(quiet.pk).auto_reply_waits is False
    assert attempts.claim(answered.pk, now=timezone.now() + timedelta(hours=1)).auto_reply_waits is True
    QueuedMessage.objects.update(lease_until=None)
    attempts.deliver(quiet.pk)
    attempts.deliver(answered.pk)
    assert looked_up == [answered.pk] and not AutoReplyDue.objects.exists()
    [reply] = replies()
    assert list(reply.recipients.values_list("address", flat=True)) == ["someone@sender.example"]
