"""Senders, paths, limits, quotas and errors: the DESIGN.md replies table over a real client."""

import smtplib

import pytest
from django.db import OperationalError, connections
from prometheus_client import REGISTRY

from accounts.models import Customer, Domain
from accounts.services.credentials import credential_create
from relay.models import QueuedMessage
from relay.smtpd import server as relay_server
from tests.peers import free_port
from tests.support.factories import PASSWORD
from tests.support.smtp import HOST, auth_plain, message, send, submission_client, swaks

pytestmark = pytest.mark.django_db(transaction=True)

ME = "info@alpha.test"


@pytest.fixture
def client(relay, cast):
    with submission_client(relay.submission, auth=(ME, PASSWORD)) as client:
        yield client


def mail_from(client, sender: str, params: str = "") -> tuple[int, bytes]:
    return client.docmd("MAIL", f"FROM:<{sender}>{' ' + params if params else ''}")


# --- senders -----------------------------------------------------------------------------------------------


def test_mailbox_login_may_only_send_as_its_own_address(client):
    assert mail_from(client, "other@alpha.test") == (553, b"5.7.1 Sender address rejected: not owned by user")
    assert mail_from(client, "info@bravo.test")[0] == 553
    assert mail_from(client, "Info@ALPHA.test") == (250, b"2.1.0 Sender OK")


def test_domain_credential_may_send_as_any_address_of_its_domain_only(relay, cast):
    new = credential_create(actor=None, domain=cast.a.domain)
    with submission_client(relay.submission, auth=(new.credential.username, new.secret)) as client:
        assert mail_from(client, "newsletter@alpha.test")[0] == 250
        client.rset()
        assert mail_from(client, "info@bravo.test")[0] == 553


def test_mailbox_credential_may_send_as_its_mailbox_only(relay, cast):
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    with submission_client(relay.submission, auth=(new.credential.username, new.secret)) as client:
        assert mail_from(client, "newsletter@alpha.test")[0] == 553
        assert mail_from(client, ME)[0] == 250


def test_unverified_domain_cannot_send(relay, cast):
    Domain.objects.filter(pk=cast.a.domain.pk).update(verified_at=None, status=Domain.DomainStatus.PENDING)
    with submission_client(relay.submission, auth=(ME, PASSWORD)) as client:
        assert mail_from(client, ME)[0] == 553


def test_from_header_of_another_address_is_refused_after_data(client):
    replies = send(client, sender=ME, recipients=["bob@example.org"], data=message(sender="ceo@bravo.test"))
    assert replies[-1] == (550, b"5.7.1 From: header address rejected: not owned by user")
    replies = send(client, sender=ME, recipients=["bob@example.org"],
                   data=b"To: bob@example.org\r\nSubject: no From\r\n\r\nbody\r\n")
    assert replies[-1][0] == 550
    assert not QueuedMessage.objects.exists()


def test_display_name_in_from_header_is_fine(client):
    data = message(sender='"Alpha Info" <info@alpha.test>')
    assert send(client, sender=ME, recipients=["bob@example.org"], data=data)[-1][0] == 250


def test_null_sender_is_refused_from_authenticated_clients(client):
    code, text = client.docmd("MAIL", "FROM:<>")
    assert (code, text[:5]) == (550, b"5.7.1")


# --- no open relay -------------------------------------------------------------------------------------------

TRICKS = [
    "bob@example.org",
    "bob%example.org@alpha.test",
    "example.org!bob@alpha.test",
    "@alpha.test:bob@example.org",
    '"bob@example.org"@alpha.test',
    "bob@[192.0.2.1]",
]


@pytest.mark.parametrize("recipient", TRICKS)
def test_unauthenticated_clients_cannot_relay_by_any_trick(relay, cast, recipient):
    with submission_client(relay.submission) as client:
        assert client.docmd("MAIL", f"FROM:<{ME}>") == (530, b"5.7.0 Authentication required")
        assert client.docmd("RCPT", f"TO:<{recipient}>") == (530, b"5.7.0 Authentication required")
    with smtplib.SMTP(HOST, relay.submission) as client:  # without TLS at all
        client.ehlo()
        assert client.docmd("RCPT", f"TO:<{recipient}>")[0] == 530
    assert not QueuedMessage.objects.exists()


@pytest.mark.parametrize("recipient, reply", [
    ("bob%example.org@alpha.test", b"554 5.7.1"),
    ("example.org!bob@alpha.test", b"554 5.7.1"),
    ("@alpha.test:bob@example.org", b"554 5.7.1"),
    ("@a.test,@b.test:bob@example.org", b"554 5.7.1"),
    ('"bob@example.org"@alpha.test', b"501 5.1.3"),
    ('"bob"@example.org', b"501 5.1.3"),
    ("bob@[192.0.2.1]", b"501 5.1.3"),
    ("bob@[IPv6:2001:db8::1]", b"501 5.1.3"),
    ("", b"501 5.1.3"),
])
def test_authenticated_clients_cannot_use_relay_tricks_either(client, recipient, reply):
    assert mail_from(client, ME)[0] == 250
    code, text = client.docmd("RCPT", f"TO:<{recipient}>")
    assert f"{code} {text.decode()}".encode().startswith(reply)
    assert client.docmd("RCPT", "TO:<bob@example.org>")[0] == 250


# --- limits ---------------------------------------------------------------------------------------------------


def test_too_many_recipients_by_setting_and_by_plan(relay, cast, settings):
    settings.RELAY_MAX_RECIPIENTS = 3
    with submission_client(relay.submission, auth=(ME, PASSWORD)) as client:
        assert mail_from(client, ME)[0] == 250
        codes = [client.docmd("RCPT", f"TO:<r{i}@example.org>") for i in range(4)]
        assert [c for c, _ in codes[:3]] == [250, 250, 250]
        assert codes[3] == (452, b"4.5.3 Too many recipients")
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_recipients=2)
    with submission_client(relay.submission, auth=(ME, PASSWORD)) as client:
        replies = send(client, sender=ME, recipients=["a@example.org", "b@example.org", "c@example.org"],
                       data=message(sender=ME))
        assert replies[3] == (452, b"4.5.3 Too many recipients")


def test_size_over_the_plan_is_refused_on_the_parameter_and_on_the_data(relay, cast):
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_message_size=2000)
    with submission_client(relay.submission, auth=(ME, PASSWORD)) as client:
        assert mail_from(client, ME, "SIZE=2001") == (552, b"5.3.4 Message size exceeds fixed limit")
        assert mail_from(client, ME, "SIZE=1500")[0] == 250
        client.rset()
        big = message(sender=ME, body="y" * 70 + "\r\n") * 1  # header + one line: small
        assert send(client, sender=ME, recipients=["bob@example.org"], data=big)[-1][0] == 250
        big = message(sender=ME, body=("y" * 70 + "\r\n") * 40)
        replies = send(client, sender=ME, recipients=["bob@example.org"], data=big)
        assert replies[-1] == (552, b"5.3.4 Message size exceeds fixed limit")
        assert client.noop()[0] == 250


def test_size_over_the_relay_maximum_is_refused_while_reading(relay, cast, settings):
    settings.RELAY_MAX_MESSAGE_SIZE = 1000
    with submission_client(relay.submission, auth=(ME, PASSWORD)) as client:
        assert mail_from(client, ME, "SIZE=1001")[0] == 552
        replies = send(client, sender=ME, recipients=["bob@example.org"],
                       data=message(sender=ME, body=("z" * 70 + "\r\n") * 30))
        assert replies[-1] == (552, b"5.3.4 Message size exceeds fixed limit")


def test_line_over_1000_octets_is_refused_and_the_session_stays_usable(client):
    replies = send(client, sender=ME, recipients=["bob@example.org"], data=message(sender=ME, body="w" * 1200 + "\r\n"))
    assert replies[-1][0] == 500 and replies[-1][1].startswith(b"5.5.2 ")
    assert send(client, sender=ME, recipients=["bob@example.org"], data=message(sender=ME))[-1][0] == 250
    code, text = client.docmd("NOOP " + "n" * 1100)
    assert (code, text[:5]) == (500, b"5.5.2")
    assert client.noop()[0] == 250


def test_local_part_and_path_lengths(client):
    assert mail_from(client, ME)[0] == 250
    assert client.docmd("RCPT", f"TO:<{'l' * 65}@example.org>") == (
        501, b"5.1.3 Local part too long (at most 64 characters)")
    long_domain = ".".join(["d" * 60] * 4) + ".org"  # 247 octets: a valid domain, but not in a 256-octet path
    assert client.docmd("RCPT", f"TO:<{'l' * 20}@{long_domain}>") == (
        501, b"5.1.3 Path too long (at most 256 characters)")
    assert client.docmd("RCPT", f"TO:<{'l' * 64}@example.org>")[0] == 250


def utf8_command(client, line: str) -> tuple[int, bytes]:
    client.send(line.encode() + b"\r\n")  # smtplib's docmd sends ASCII only
    return client.getreply()


def test_non_ascii_address_needs_smtputf8(client):
    assert mail_from(client, ME)[0] == 250
    assert utf8_command(client, "RCPT TO:<jörg@example.org>") == (
        553, b"5.6.7 Non-ASCII addresses need the SMTPUTF8 parameter")
    client.rset()
    assert mail_from(client, ME, "SMTPUTF8")[0] == 250
    assert utf8_command(client, "RCPT TO:<jörg@bücher.example>")[0] == 250
    code, text = client.docmd("DATA")
    assert code == 354
    client.send(message(sender=ME) + b".\r\n")
    code, text = client.getreply()
    assert code == 250
    stored = QueuedMessage.objects.get()
    assert list(stored.recipients.values_list("address", flat=True)) == ["jörg@xn--bcher-kva.example"]


@pytest.mark.parametrize("command, reply", [
    ("MAIL FROM", b"501 5.5.4"),
    ("MAIL TO:<info@alpha.test>", b"501 5.5.4"),
    ("MAIL FROM:<info@alpha.test", b"501 5.5.4"),
    ("MAIL FROM:<info@alpha.test> BODY=9BIT", b"501 5.5.4"),
    ("RCPT TO:<bob@example.org>", b"503 5.5.1"),
    ("DATA", b"503 5.5.1"),
    ("FOO bar", b"500 5.5.2"),
])
def test_bad_syntax_and_sequence_get_enhanced_codes(client, command, reply):
    code, text = client.docmd(command)
    assert f"{code} {text.decode()}".encode().startswith(reply)
    assert client.noop()[0] == 250


# --- quota, headers, errors --------------------------------------------------------------------------------------


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_over_a_sending_limit_is_451_and_nothing_is_stored(relay, cast):
    quota_before = counter("hostingmail_quota_rejections_total", level="customer")
    rejected_before = counter("hostingmail_smtp_rejections_total", reason="451 4.7.1")
    Customer.objects.filter(pk=cast.a.customer.pk).update(send_per_hour=2)
    with submission_client(relay.submission, auth=(ME, PASSWORD)) as client:
        replies = send(client, sender=ME, recipients=["a@example.org", "b@example.org", "c@example.org"],
                       data=message(sender=ME))
        code, text = replies[-1]
        assert code == 451 and text.startswith(b"4.7.1 Sending limit reached: 2 recipients per hour for customer")
        assert not QueuedMessage.objects.exists()
        assert send(client, sender=ME, recipients=["a@example.org", "b@example.org"],
                    data=message(sender=ME))[-1][0] == 250
        assert send(client, sender=ME, recipients=["c@example.org"], data=message(sender=ME))[-1][0] == 451
    assert QueuedMessage.objects.count() == 1
    assert counter("hostingmail_quota_rejections_total", level="customer") == quota_before + 2
    assert counter("hostingmail_smtp_rejections_total", reason="451 4.7.1") == rejected_before + 2


def test_received_date_and_message_id_are_added(client):
    replies = send(client, sender=ME, recipients=["bob@example.org"], data=message(sender=ME))
    queue_id = replies[-1][1].decode().rsplit(" ", 1)[1]
    content = bytes(QueuedMessage.objects.get(queue_id=queue_id).content).decode()
    head = content.split("\r\n\r\n", 1)[0]
    assert head.startswith("Received: from client.test ([127.0.0.1])\r\n\tby relay.test (hostingmail) with ESMTPSA (TLSv1.")
    assert f" id {queue_id}\r\n\tfor <bob@example.org>;" in head
    assert "\r\nDate: " in head and "\r\nMessage-ID: <" in head
    stored = QueuedMessage.objects.get(queue_id=queue_id)
    assert stored.message_id.endswith("@alpha.test>") and stored.message_id in head
    assert content.endswith("Hi there.\r\n")


def test_existing_date_and_message_id_are_kept(client):
    data = message(sender=ME, extra="Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <keep.me@alpha.test>\r\n")
    send(client, sender=ME, recipients=["bob@example.org"], data=data)
    stored = QueuedMessage.objects.get()
    content = bytes(stored.content).decode()
    assert content.count("Date: ") == 1 and content.count("Message-ID: ") == 1
    assert stored.message_id == "<keep.me@alpha.test>"


def test_dot_stuffed_lines_are_stored_unstuffed(client):
    send(client, sender=ME, recipients=["bob@example.org"], data=message(sender=ME, body=".hidden\r\n..two\r\n"))
    assert bytes(QueuedMessage.objects.get().content).endswith(b"\r\n\r\n.hidden\r\n..two\r\n")


def test_the_next_transaction_may_follow_the_end_of_a_message_in_the_same_write(client):
    """RFC 2920: after the lone dot a client may send its next commands at once; each is answered in turn and no
    message holds anything of what followed its end."""
    assert client.docmd("MAIL", f"FROM:<{ME}>")[0] == 250
    assert client.docmd("RCPT", "TO:<bob@example.org>")[0] == 250
    assert client.docmd("DATA")[0] == 354
    client.send(message(sender=ME, subject="first", body="..dot\r\n") + b".\r\n"
                + f"MAIL FROM:<{ME}>\r\nRCPT TO:<carol@example.org>\r\n".encode())
    assert [client.getreply()[0] for _ in range(3)] == [250, 250, 250]
    assert client.docmd("DATA")[0] == 354
    client.send(message(sender=ME, subject="second") + b".\r\nNOOP\r\n")
    assert [client.getreply()[0] for _ in range(2)] == [250, 250]
    first, second = (bytes(m.content) for m in QueuedMessage.objects.order_by("id"))
    assert b"Subject: first" in first and first.endswith(b"\r\n\r\n.dot\r\n") and b"MAIL FROM" not in first
    assert b"Subject: second" in second and b"NOOP" not in second
    assert list(QueuedMessage.objects.order_by("id").values_list("recipients__address", flat=True)) == [
        "bob@example.org", "carol@example.org"]


@pytest.mark.parametrize("error", [RuntimeError("secret internals /srv/app.py line 3"),
                                   OperationalError("could not connect to server")])
def test_uncaught_or_database_error_is_451_without_details(client, monkeypatch, error, caplog):
    def broken(submissions):
        raise error

    async def broken_on_loop(submissions, writer):  # PostgreSQL: the accept written from the event loop
        raise error

    monkeypatch.setattr(relay_server, "accept_messages", broken)
    monkeypatch.setattr(relay_server, "accept_messages_on_loop", broken_on_loop)
    replies = send(client, sender=ME, recipients=["bob@example.org"], data=message(sender=ME))
    assert replies[-1] == (451, b"4.3.0 Internal error; please try again later")
    assert client.noop()[0] == 250
    logged = [r for r in caplog.records if r.getMessage().startswith("event=error ")]
    assert len(logged) == 1
    assert f"error={type(error).__name__}" in logged[0].getMessage()
    assert "session=" in logged[0].getMessage() and "mailbox=info@alpha.test" in logged[0].getMessage()


def test_database_unreachable_for_real_is_454_at_auth_and_451_at_mail(relay, cast):
    # Point the relay's connections at a closed port (or an SQLite file that cannot be opened): nothing mocked.
    db = connections["default"]
    original = dict(db.settings_dict)
    sender = submission_client(relay.submission, auth=(ME, PASSWORD))
    if db.vendor == "sqlite":
        db.settings_dict["NAME"] = "/nonexistent-directory/hostingmail.sqlite3"
    else:
        db.settings_dict.update(HOST=HOST, PORT=free_port())
    relay.relay.db.close_connections()
    try:
        with submission_client(relay.submission) as client:
            code, text = auth_plain(client, ME, PASSWORD)
        replies = send(sender, sender=ME, recipients=["bob@example.org"], data=message(sender=ME))
    finally:
        db.settings_dict.update(original)
    assert (code, text) == (454, b"4.7.0 Temporary authentication failure, please try again later")
    # MAIL reads the login's generation (a revoked login stops there), so MAIL is the first to notice.
    assert replies[0] == (451, b"4.3.0 Internal error; please try again later")
    # Back to normal as soon as the database is.
    assert send(sender, sender=ME, recipients=["bob@example.org"], data=message(sender=ME))[-1][0] == 250
    sender.close()


def test_swaks_sender_mismatch_is_553(relay, cast):
    result = swaks(relay.submission, "--auth", "PLAIN", "--auth-user", ME, "--auth-password", PASSWORD,
                   "--from", "ceo@bravo.test", "--to", "bob@example.org")
    assert "553 5.7.1 Sender address rejected: not owned by user" in result.stdout
    assert not QueuedMessage.objects.exists()


SWAKS_AUTH = ["--auth", "PLAIN", "--auth-user", ME, "--auth-password", PASSWORD]


@pytest.mark.parametrize("args, tls, expected, stored", [
    (["--from", ME, "--to", "bob@example.org"], "--protocol=ESMTP",  # never starts TLS
     "530 5.7.0 Must issue a STARTTLS command first", 0),
    (["--from", ME, "--to", "bob@example.org"], "--tls", "530 5.7.0 Authentication required", 0),
    # The third recipient is refused; the message goes to the first two (RFC 5321 4.5.3.1.10).
    ([*SWAKS_AUTH, "--from", ME, "--to", "a@example.org,b@example.org,c@example.org"], "--tls",
     "452 4.5.3 Too many recipients", 1),
    ([*SWAKS_AUTH, "--from", ME, "--to", "bob@example.org", "--header", "From: boss@bravo.test"], "--tls",
     "550 5.7.1 From: header address rejected: not owned by user", 0),
    ([*SWAKS_AUTH, "--from", ME, "--to", "bob@example.org", "--body", "\n".join(["q" * 70] * 40)], "--tls",
     "552 5.3.4 Message size exceeds fixed limit", 0),
    ([*SWAKS_AUTH, "--from", ME, "--to", "bob%example.org@alpha.test"], "--tls", "554 5.7.1 Relay access denied", 0),
])
def test_swaks_sees_the_replies_of_the_table(relay, cast, settings, args, tls, expected, stored):
    settings.RELAY_MAX_RECIPIENTS = 2
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_message_size=2500)
    result = swaks(relay.submission, *args, tls=tls)
    assert expected in result.stdout, result.stdout + result.stderr
    assert QueuedMessage.objects.count() == stored


def test_paths_are_remembered_but_refusals_are_worked_out_each_time():
    from relay.submission.policy import Reject, check_path

    before = check_path.cache_info().hits
    assert check_path("<Someone@Example.ORG>", smtputf8=False) == check_path("<Someone@Example.ORG>", smtputf8=False)
    assert check_path.cache_info().hits == before + 1
    for _ in range(2):
        with pytest.raises(Reject) as refused:
            check_path("<a%b@example.org>", smtputf8=False)
        assert refused.value.reply.startswith("554 5.7.1")
    # aiosmtpd's own parse of the same text, remembered by the session class: same answer as aiosmtpd's
    from aiosmtpd.smtp import SMTP

    from relay.smtpd.protocol import _getaddr, _PathParser

    for arg in ("<bob@example.org> SIZE=100", "bob@example.org", "<>", "<@route:bob@example.org>"):
        assert _getaddr(arg, 64) == SMTP._getaddr(_PathParser(64), arg)
