"""The MX on port 25 (relay.smtpd.mx): what it offers, every decision at RCPT with its exact reply, open-relay
tricks, and the durable accept of what it takes."""

import pytest

from accounts.models import Domain, Mailbox, Reseller
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_update
from accounts.services.suspension import suspend
from relay.models import QueuedMessage
from tests.support.inbound import mta_client
from tests.support.smtp import send

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "someone@sender.example"


def inbound(subject="Hello", to="info@alpha.test", extra="", body="Hi.\r\n") -> bytes:
    return (f"From: {SENDER}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}\r\n{body}").encode()


@pytest.fixture
def mx(mx_factory, cast, dns_server):
    dns_server(txt=["other.example,v=spf1 -all"])  # the sender's zone exists, with no records for it: SPF none
    return mx_factory()


def rcpt(mx, address: str, *, sender: str = SENDER, mail_options: str = "") -> tuple[int, str]:
    with mta_client(mx.port) as client:
        assert client.docmd("MAIL", f"FROM:<{sender}>{mail_options}")[0] == 250
        code, text = client.docmd("RCPT", f"TO:{address}")
        return code, text.decode()


def test_ehlo_offers_starttls_and_size_but_never_auth(mx):
    with mta_client(mx.port) as client:
        features = client.ehlo_resp.decode()
        assert "STARTTLS" in features and "SIZE" in features and "AUTH" not in features
        assert client.docmd("AUTH", "PLAIN AGZvbwBiYXI=")[0] == 503
    with mta_client(mx.port, starttls=True) as client:
        assert "AUTH" not in client.ehlo_resp.decode() and "STARTTLS" not in client.ehlo_resp.decode()
        code, text = client.docmd("AUTH", "PLAIN AGZvbwBiYXI=")
        assert (code, text) == (503, b"5.5.1 Error: authentication not enabled")


def test_plain_text_session_delivers_without_starttls(mx):
    with mta_client(mx.port) as client:
        replies = send(client, sender=SENDER, recipients=["info@alpha.test"], data=inbound())
    assert replies[-1][0] == 250, replies


def test_unhosted_domain_is_relay_access_denied(mx):
    code, text = rcpt(mx, "<someone@example.org>")
    assert (code, text) == (554, "5.7.1 Relay access denied")


def test_unverified_domain_is_relay_access_denied(mx, cast):
    domain_create(actor=None, customer=cast.a.customer, name="pending.test")
    assert rcpt(mx, "<info@pending.test>") == (554, "5.7.1 Relay access denied")


def test_no_such_mailbox_is_user_unknown(mx):
    assert rcpt(mx, "<nobody@alpha.test>") == (550, "5.1.1 User unknown")


def test_recipient_case_does_not_matter(mx):
    assert rcpt(mx, "<Info@ALPHA.test>")[0] == 250


@pytest.mark.parametrize("suspended", ["mailbox", "domain", "customer", "reseller"])
def test_disabled_mailbox_or_suspended_owner_is_refused_at_rcpt(mx, cast, suspended):
    if suspended == "mailbox":
        mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=False)
    elif suspended == "reseller":
        Reseller.objects.filter(pk=cast.reseller_a.pk).update(status="suspended")
    else:
        suspend(actor=None, obj=getattr(cast.a, suspended), reason="unpaid invoice")
    code, text = rcpt(mx, "<info@alpha.test>")
    assert (code, text[:5]) == (550, "5.2.1"), text
    assert rcpt(mx, "<info@bravo.test>")[0] == 250  # another customer's mailbox is unaffected


def test_mailbox_over_its_quota_is_full(mx, cast):
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(used_bytes=100 * 1024 * 1024)  # quota_mb=100
    assert rcpt(mx, "<info@alpha.test>") == (552, "5.2.2 Mailbox full")


def test_declared_size_larger_than_the_free_space_is_refused_at_rcpt(mx, cast):
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(used_bytes=99 * 1024 * 1024)
    assert rcpt(mx, "<info@alpha.test>", mail_options=" SIZE=4096")[0] == 250
    code, text = rcpt(mx, "<info@alpha.test>", mail_options=f" SIZE={2 * 1024 * 1024}")
    assert (code, text[:5]) == (552, "5.2.2"), text


@pytest.mark.parametrize("path", [
    "<@alpha.test:victim@elsewhere.example>",  # source route
    "<@alpha.test,@mx.alpha.test:victim@elsewhere.example>",
    "<victim%elsewhere.example@alpha.test>",  # %-hack
    "<elsewhere.example!victim@alpha.test>",  # bang path
    '<"victim@elsewhere.example"@alpha.test>',  # quoting
    '<"victim%elsewhere.example"@alpha.test>',
    "<victim@[127.0.0.1]>",  # address literal
    "<victim@[IPv6:::1]>",
])
def test_open_relay_tricks_are_relay_access_denied(mx, path):
    assert rcpt(mx, path) == (554, "5.7.1 Relay access denied")
    assert not QueuedMessage.objects.exists()


def test_null_sender_is_accepted_and_stored_as_inbound(mx, cast):
    with mta_client(mx.port) as client:
        replies = send(client, sender="", recipients=["info@alpha.test"], data=inbound("Delivery failure"))
    code, text = replies[-1]
    assert code == 250, replies
    message = QueuedMessage.objects.get()
    assert text.decode() == f"2.0.0 Ok: queued as {message.queue_id}"
    assert (message.direction, message.mail_from, message.customer_id) == ("inbound", "", cast.a.customer.pk)
    recipient = message.recipients.get()
    assert (recipient.address, recipient.mailbox_id) == ("info@alpha.test", cast.a.mailbox.pk)
    content = bytes(message.content)
    assert content.startswith(b"Received: from mta.sender.example ([127.0.0.1])")
    assert content.endswith(inbound("Delivery failure"))


def test_more_than_100_recipients_are_452_at_the_101st(mx, cast):
    Mailbox.objects.bulk_create([Mailbox(domain=cast.a.domain, local_part=f"u{n}", password_hash="x")
                                 for n in range(100)])
    with mta_client(mx.port) as client:
        assert client.docmd("MAIL", f"FROM:<{SENDER}>")[0] == 250
        replies = [client.docmd("RCPT", f"TO:<u{n}@alpha.test>") for n in range(100)]
        assert {code for code, _ in replies} == {250}
        assert client.docmd("RCPT", "TO:<info@alpha.test>") == (452, b"4.5.3 Too many recipients")
        assert client.docmd("DATA")[0] == 354
        client.send(inbound() + b".\r\n")
        assert client.getreply()[0] == 250
    assert QueuedMessage.objects.get().recipients.count() == 100


def test_two_addresses_of_one_message_each_get_their_mailbox(mx, cast):
    with mta_client(mx.port) as client:
        replies = send(client, sender=SENDER, recipients=["info@alpha.test", "info@bravo.test", "info@alpha.test"],
                       data=inbound())
    assert [code for code, _ in replies] == [250, 250, 250, 250, 354, 250]
    message = QueuedMessage.objects.get()
    assert sorted(message.recipients.values_list("mailbox_id", flat=True)) == sorted(
        [cast.a.mailbox.pk, cast.b.mailbox.pk])


@pytest.mark.parametrize("hops, code", [(29, 250), (30, 554)])
def test_a_message_with_30_received_headers_is_a_loop(mx, hops, code):
    received = "".join(f"Received: from hop{n}.example by hop{n + 1}.example; Mon, 1 Jan 2026 00:00:00 +0000\r\n"
                       for n in range(hops))
    data = received.encode() + inbound()
    with mta_client(mx.port) as client:
        replies = send(client, sender=SENDER, recipients=["info@alpha.test"], data=data)
    assert replies[-1][0] == code, replies
    if code == 554:
        assert replies[-1][1] == b"5.4.6 Too many hops: mail loop detected"
        assert not QueuedMessage.objects.exists()


def test_authentication_results_claiming_our_id_are_removed_others_kept(mx, settings):
    extra = (f"Authentication-Results: {settings.MX_AUTHSERV_ID}; spf=pass smtp.mailfrom=forged.example;\r\n"
             f"\tdmarc=pass header.from=forged.example\r\n"
             "Authentication-Results: other.example.org; dkim=pass header.d=sender.example\r\n")
    with mta_client(mx.port) as client:
        assert send(client, sender=SENDER, recipients=["info@alpha.test"], data=inbound(extra=extra))[-1][0] == 250
    content = bytes(QueuedMessage.objects.get().content)
    ours = [line for line in content.split(b"\r\n") if line.startswith(b"Authentication-Results: mx.example.net")]
    assert len(ours) == 1 and b"forged.example" not in content
    assert b"Authentication-Results: other.example.org; dkim=pass header.d=sender.example" in content


def test_a_refusal_is_never_remembered_and_a_suspension_is_taken_at_once(mx_factory, cast, dns_server, settings):
    dns_server(txt=["other.example,v=spf1 -all"])
    settings.MX_RECIPIENT_CACHE_SECONDS = 3600
    mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=False)
    mx = mx_factory()
    assert rcpt(mx, "<info@alpha.test>")[0] == 550
    mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=True)
    assert rcpt(mx, "<info@alpha.test>")[0] == 250  # restored: taken at once
    assert "info@alpha.test" in mx.mx.handler.routes.entries  # remembered as deliverable
    mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=False)
    assert rcpt(mx, "<info@alpha.test>")[0] == 550  # the route generation moved: forgotten


def test_a_message_spooled_to_a_file_is_received_whole(mx, settings):
    settings.RELAY_SPOOL_THRESHOLD = 1024  # the protocol spools larger content to a file as it arrives
    body = "".join(f"line {n} of a long message\r\n" for n in range(400))
    with mta_client(mx.port) as client:
        replies = send(client, sender=SENDER, recipients=["info@alpha.test"], data=inbound("Large", body=body))
    assert replies[-1][0] == 250, replies
    assert bytes(QueuedMessage.objects.get().content).endswith(inbound("Large", body=body))


@pytest.mark.parametrize("address", ["<postmaster@alpha.test>", "<POSTMASTER@Alpha.Test>", "<Postmaster>"])
def test_postmaster_is_accepted_and_stored_for_the_first_mailbox(mx, cast, settings, address):
    settings.MX_POSTMASTER_DOMAIN = "alpha.test"  # the provider's own domain, for the bare <postmaster>
    with mta_client(mx.port) as client:
        assert client.docmd("MAIL", f"FROM:<{SENDER}>")[0] == 250
        assert client.docmd("RCPT", f"TO:{address}")[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(inbound(to="postmaster@alpha.test") + b".\r\n")
        assert client.getreply()[0] == 250
    recipient = QueuedMessage.objects.get().recipients.get()
    assert (recipient.address, recipient.mailbox_id) == ("info@alpha.test", cast.a.mailbox.pk)


def test_inbound_accepts_go_to_one_write_lane(mx):
    # No quota rows to keep apart: one lane, whose batches hold every message that arrived while it committed.
    assert len(mx.mx.db.lanes) == 1
    with mta_client(mx.port) as client:
        replies = send(client, sender=SENDER, recipients=["info@alpha.test"], data=inbound("One lane"))
    assert replies[-1][0] == 250, replies
