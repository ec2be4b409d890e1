"""Forwarding an inbound message to external addresses: SRS envelope, ARC seal verified with dkimpy against the
key in dnsmasq, counted against the sending limits, delivered to Postfix's smtp-sink."""

from email.parser import BytesHeaderParser
from email.policy import compat32

import dkim as dkimpy
import pytest
from django.utils import timezone

from accounts import quotas, srs
from accounts.models import SendUsage
from accounts.quotas import QuotaExceeded
from accounts.services.limits import limit_set
from relay.delivery import attempts
from relay.delivery.forward import arc_seal, forward_message
from relay.delivery.smtpclient import ConnectionCache
from relay.models import QueuedMessage
from tests.relay.delivery.test_dkim import dns_txt, publish_checked
from tests.support.delivery import handed_over, routes  # noqa: F401
from tests.support.mx import SmtpSink

pytestmark = pytest.mark.django_db

AUTHSERV = "mx.hosting.test"


@pytest.fixture(autouse=True)
def authserv(settings):
    settings.ARC_AUTHSERV_ID = AUTHSERV


def aar(content: bytes) -> str:
    header = BytesHeaderParser(policy=compat32).parsebytes(content)["ARC-Authentication-Results"]
    return " ".join(str(header).split())


def inbound(tenant, *, mail_from="alice@example.org", results=f"{AUTHSERV}; spf=pass smtp.mailfrom=example.org"):
    """A message as the MX stores it for a hosted recipient: its own Authentication-Results on top."""
    content = (f"Authentication-Results: {results}\r\n"
               "Received: from mail.example.org ([192.0.2.1]) by mx.hosting.test\r\n"
               "From: Alice <alice@example.org>\r\nTo: team@alpha.test\r\nSubject: Forward me\r\n"
               "Message-ID: <fwd-1@example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHello there.\r\n"
               ).encode()
    return QueuedMessage.objects.create(
        customer=tenant.customer, domain=tenant.domain, mail_from=mail_from, header_from="alice@example.org",
        subject="Forward me", message_id="<fwd-1@example.org>", size=len(content), content=content,
        state=QueuedMessage.State.DELIVERED)


def test_forward_queues_an_srs_arc_sealed_copy_counted_against_the_domain(
        cast, routes, django_capture_on_commit_callbacks):
    publish_checked(cast.a.domain)
    original = inbound(cast.a)
    with handed_over() as send, django_capture_on_commit_callbacks(execute=True):
        copy = forward_message(original.pk, ["boss@b.test", "other@b.test"])
    send.assert_called_once_with([copy.pk])
    assert copy.state == QueuedMessage.State.QUEUED and copy.domain_id == cast.a.domain.pk
    assert copy.mail_from.startswith("SRS0=") and copy.mail_from.endswith("=example.org=alice@alpha.test")
    assert srs.srs_reverse(copy.mail_from) == "alice@example.org"
    assert sorted(copy.recipients.values_list("address", flat=True)) == ["boss@b.test", "other@b.test"]
    content = bytes(copy.content)
    assert content.startswith(b"ARC-Seal: i=1;") and content.endswith(bytes(original.content))
    cv, results, reason = dkimpy.arc_verify(content, dnsfunc=dns_txt)
    assert cv == b"pass", reason
    assert "spf=pass" in aar(content)
    used = quotas.usage(scope=SendUsage.Scope.DOMAIN, scope_id=cast.a.domain.pk)
    assert used["hour"] == 2
    assert quotas.usage(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.a.customer.pk)["hour"] == 2
    # Called again (a retried task), it finds the copy it made and counts nothing more.
    with handed_over():
        assert forward_message(original.pk, ["other@b.test", "boss@b.test"]).pk == copy.pk
    assert quotas.usage(scope=SendUsage.Scope.DOMAIN, scope_id=cast.a.domain.pk)["hour"] == 2


def test_a_mailbox_forward_counts_against_the_mailbox(cast, routes):
    original = inbound(cast.a)
    with handed_over():
        forward_message(original.pk, ["me@b.test"], mailbox_id=cast.a.mailbox.pk)
    assert quotas.usage(scope=SendUsage.Scope.MAILBOX, scope_id=cast.a.mailbox.pk)["hour"] == 1


def test_over_the_sending_limit_nothing_is_queued(cast, routes, django_capture_on_commit_callbacks):
    limit_set(actor=None, obj=cast.a.domain, changes={"send_per_hour": 1})
    original = inbound(cast.a)
    with (handed_over() as send, django_capture_on_commit_callbacks(execute=True),
          pytest.raises(QuotaExceeded)):
        forward_message(original.pk, ["boss@b.test", "other@b.test"])
    send.assert_not_called()
    assert QueuedMessage.objects.count() == 1


def test_a_bounce_is_forwarded_from_the_null_sender(cast, routes):
    original = inbound(cast.a, mail_from="")
    with handed_over():
        copy = forward_message(original.pk, ["boss@b.test"])
    assert copy.mail_from == "" and copy.is_bounce


def test_no_seal_without_a_published_key_and_the_seal_says_none_without_our_results(cast, routes):
    content = bytes(inbound(cast.a).content)
    assert arc_seal(content, cast.a.domain) == b"", "the DKIM record was never seen in the DNS"
    domain = publish_checked(cast.a.domain)
    foreign = content.replace(f"Authentication-Results: {AUTHSERV};".encode(), b"Authentication-Results: evil.test;")
    seal = arc_seal(foreign, domain)
    assert "spf=pass" not in aar(seal + foreign) and AUTHSERV in aar(seal + foreign), \
        "another server's claims are not carried on"
    assert dkimpy.arc_verify(seal + foreign, dnsfunc=dns_txt)[0] == b"pass"


def test_a_second_hop_continues_the_chain(cast, routes):
    first = publish_checked(cast.a.domain)
    content = bytes(inbound(cast.a).content)
    hop1 = arc_seal(content, first) + content
    second = publish_checked(cast.b.domain)
    hop2 = arc_seal(b"Authentication-Results: " + AUTHSERV.encode() + b"; arc=pass\r\n" + hop1, second)
    assert hop2.startswith(b"ARC-Seal: i=2;")
    chained = hop2 + b"Authentication-Results: " + AUTHSERV.encode() + b"; arc=pass\r\n" + hop1
    assert dkimpy.arc_verify(chained, dnsfunc=dns_txt)[0] == b"pass"


def test_the_forwarded_copy_reaches_smtp_sink_with_the_srs_sender_and_a_valid_seal(cast, routes, settings, tmp_path):
    publish_checked(cast.a.domain)
    sink = SmtpSink(dump_dir=tmp_path)
    settings.DELIVERY_PORT = sink.port
    try:
        with handed_over():
            copy = forward_message(inbound(cast.a).pk, ["boss@b.test"])
        attempts.deliver(copy.pk, cache=ConnectionCache(idle_seconds=0), now=timezone.now())
        copy.refresh_from_db()
        assert copy.state == QueuedMessage.State.DELIVERED
        [dump] = sink.dumps()
    finally:
        sink.stop()
    assert copy.mail_from.encode() in dump
    message = dump[dump.index(b"ARC-Seal:"):]
    assert dkimpy.arc_verify(message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), dnsfunc=dns_txt)[0] == b"pass"


def test_an_alias_to_a_mailbox_and_an_outside_address_through_the_mx_path(cast, routes):
    """RCPT resolution, the durable inbound accept and the worker: the mailbox's copy goes to LMTP, the outside
    address gets one SRS, ARC-sealed outbound copy in the alias domain's name, and the inbound recipient says so."""
    from accounts.services.aliases import alias_create
    from relay.inbound.accept import InboundMessage, accept_inbound
    from relay.inbound.rules import check_recipient

    alias_create(actor=None, domain=cast.a.domain, local_part="team",
                 destinations=[cast.a.mailbox.address, "boss@b.test"])
    accepted = check_recipient("team@alpha.test")
    assert [m.address for m in accepted.mailboxes] == [cast.a.mailbox.address]
    assert accepted.external == ("boss@b.test",) and accepted.forwarding_domain_id == cast.a.domain.pk
    content = b"From: Alice <alice@example.org>\r\nTo: team@alpha.test\r\nSubject: Hi\r\n\r\nHello.\r\n"
    with handed_over():
        [stored] = accept_inbound([InboundMessage(mail_from="alice@example.org", recipients=[accepted],
                                                  content=content, client_ip="192.0.2.1", helo="mail.example.org",
                                                  tls_version="TLSv1.3")])
    outside = stored.recipients.get(mailbox__isnull=True)
    with handed_over():
        [outcome] = attempts.forward_outside(stored, [outside])
    copy = QueuedMessage.objects.get(direction=QueuedMessage.Direction.OUTBOUND, domain=cast.a.domain)
    assert outcome.state == "delivered" and outcome.reply == f"Forwarded as {copy.queue_id}"
    assert srs.srs_reverse(copy.mail_from) == "alice@example.org"
    assert list(copy.recipients.values_list("address", flat=True)) == ["boss@b.test"]
    assert quotas.usage(scope=SendUsage.Scope.DOMAIN, scope_id=cast.a.domain.pk)["hour"] == 1


def _accepted_through_the_mx(*addresses: str) -> QueuedMessage:
    """One inbound message to these hosted addresses, resolved at RCPT and stored as the MX stores it."""
    from relay.inbound.accept import InboundMessage, accept_inbound
    from relay.inbound.rules import check_recipient

    content = (b"Authentication-Results: mx.hosting.test; spf=pass smtp.mailfrom=example.org\r\n"
               b"From: Alice <alice@example.org>\r\nTo: team@alpha.test\r\nSubject: Hi\r\n"
               b"Message-ID: <several@example.org>\r\n\r\nHello.\r\n")
    with handed_over():
        [stored] = accept_inbound([InboundMessage(
            mail_from="alice@example.org", recipients=[check_recipient(a) for a in addresses], content=content,
            client_ip="192.0.2.1", helo="mail.example.org", tls_version="TLSv1.3")])
    return stored


def test_each_forwarding_domain_sends_its_own_copy_under_its_own_srs_and_limits(cast, routes):
    """One message to an alias of alpha.test, an alias of bravo.test (another customer) and a mailbox of alpha.test
    that forwards a copy: three outbound copies, each in its forwarder's name and counted where it belongs."""
    from accounts.services.aliases import alias_create, mailbox_set_forwarding

    alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["boss@b.test"])
    alias_create(actor=None, domain=cast.b.domain, local_part="sales", destinations=["agent@b.test"])
    mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=["me@b.test"], keep_copy=False)
    publish_checked(cast.a.domain)
    publish_checked(cast.b.domain)
    stored = _accepted_through_the_mx("team@alpha.test", "sales@bravo.test", cast.a.mailbox.address)
    with handed_over():
        assert attempts.deliver(stored.pk) == QueuedMessage.State.DELIVERED
    copies = {c.recipients.get().address: c for c in QueuedMessage.objects.filter(direction="outbound")}
    assert set(copies) == {"boss@b.test", "agent@b.test", "me@b.test"}
    for address, tenant, mailbox in [("boss@b.test", cast.a, None), ("agent@b.test", cast.b, None),
                                     ("me@b.test", cast.a, cast.a.mailbox)]:
        copy = copies[address]
        assert (copy.domain_id, copy.customer_id, copy.mailbox_id) == (
            tenant.domain.pk, tenant.customer.pk, mailbox.pk if mailbox else None)
        assert copy.mail_from.endswith(f"@{tenant.domain.name}")
        assert srs.srs_reverse(copy.mail_from) == "alice@example.org"
        content = bytes(copy.content)
        assert content.startswith(b"ARC-Seal: i=1;") and f"d={tenant.domain.name};".encode() in content
        assert dkimpy.arc_verify(content, dnsfunc=dns_txt)[0] == b"pass"
    assert quotas.usage(scope=SendUsage.Scope.MAILBOX, scope_id=cast.a.mailbox.pk)["hour"] == 1
    assert quotas.usage(scope=SendUsage.Scope.DOMAIN, scope_id=cast.a.domain.pk)["hour"] == 2
    assert quotas.usage(scope=SendUsage.Scope.DOMAIN, scope_id=cast.b.domain.pk)["hour"] == 1
    assert quotas.usage(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.b.customer.pk)["hour"] == 1


def test_a_customer_at_its_hourly_limit_has_its_forwards_deferred_not_sent(cast, routes,
                                                                          django_capture_on_commit_callbacks):
    """As the relay answers a customer over its limit (451 4.7.1, retried later), never sent meanwhile; the
    other customer's forward in the same message goes out."""
    from accounts.services.aliases import alias_create, mailbox_set_forwarding
    from tests.support.quotas import check_and_count
    from django.db import transaction

    limit_set(actor=None, obj=cast.a.customer, changes={"send_per_hour": 3})
    with transaction.atomic():
        check_and_count(mailbox=cast.a.mailbox, recipients=3)  # the hour's sending already used up
    alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["boss@b.test"])
    alias_create(actor=None, domain=cast.b.domain, local_part="sales", destinations=["agent@b.test"])
    mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=["me@b.test"], keep_copy=False)
    stored = _accepted_through_the_mx("team@alpha.test", "sales@bravo.test", cast.a.mailbox.address)
    with handed_over() as send, django_capture_on_commit_callbacks(execute=True):
        assert attempts.deliver(stored.pk) == QueuedMessage.State.DEFERRED
    outcome = {r.address: r for r in stored.recipients.all()}
    for address in ("boss@b.test", "me@b.test"):
        assert (outcome[address].state, outcome[address].last_code, outcome[address].last_status) == (
            "deferred", 451, "4.7.1")
        assert "Forwarding limit reached" in outcome[address].last_reply
    assert outcome["agent@b.test"].state == "delivered"
    [copy] = QueuedMessage.objects.filter(direction="outbound")
    assert copy.customer_id == cast.b.customer.pk  # nothing queued in customer A's name
    send.assert_called_once_with([copy.pk])  # only that copy was handed to the workers
    stored.refresh_from_db()
    assert stored.next_attempt_at > timezone.now()  # retried on the outbound schedule
    assert quotas.usage(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.a.customer.pk)["hour"] == 3
