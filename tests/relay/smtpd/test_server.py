"""The happy path and the basic protocol over real clients: EHLO, STARTTLS, implicit TLS, AUTH, queueing."""

import asyncio
import smtplib
import threading

import pytest
from django.db import connection

from accounts import quotas
from relay.models import QueuedMessage
from tests.support.smtp import HOST, auth_plain, message, send, smtps_client, submission_client

pytestmark = pytest.mark.django_db(transaction=True)


def ehlo_keywords(client) -> set[str]:
    return {line.split()[0].upper() for line in client.ehlo_resp.decode().splitlines()[1:]}


def test_ehlo_before_tls_offers_starttls_but_not_auth(relay):
    with smtplib.SMTP(HOST, relay.submission, local_hostname="client.test") as client:
        client.ehlo()
        keywords = ehlo_keywords(client)
        assert {"STARTTLS", "SIZE", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"} <= keywords
        assert "AUTH" not in keywords


def test_ehlo_after_starttls_offers_auth_plain_login(relay):
    with submission_client(relay.submission) as client:
        assert {"SIZE", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES", "AUTH"} <= ehlo_keywords(client)
        assert "STARTTLS" not in ehlo_keywords(client)
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")


def test_auth_before_starttls_is_refused(relay, login):
    with smtplib.SMTP(HOST, relay.submission) as client:
        client.ehlo()
        assert auth_plain(client, *login) == (530, b"5.7.0 Must issue a STARTTLS command first")


def test_mail_before_auth_is_refused(relay):
    with submission_client(relay.submission) as client:
        assert client.docmd("MAIL", "FROM:<info@alpha.test>") == (530, b"5.7.0 Authentication required")


def test_implicit_tls_offers_and_accepts_auth(relay, login):
    # aiosmtpd alone refuses AUTH on implicit TLS when auth_require_tls is set (its issue #281).
    with smtps_client(relay.smtps) as client:
        assert "AUTH" in ehlo_keywords(client) and "STARTTLS" not in ehlo_keywords(client)
        assert auth_plain(client, *login) == (235, b"2.7.0 Authentication successful")


def test_accepted_message_is_queued_at_once(relay, cast, login):
    with submission_client(relay.submission, auth=login) as client:
        replies = send(client, sender=login[0], recipients=["bob@example.org", "carol@example.net"],
                       data=message(sender=login[0], subject="Quarterly report"))
    assert [code for code, _ in replies] == [250, 250, 250, 354, 250]
    code, text = replies[-1]
    assert text.startswith(b"2.0.0 Ok: queued as ")
    queue_id = text.decode().rsplit(" ", 1)[1]
    stored = QueuedMessage.objects.get(queue_id=queue_id)
    assert stored.state == QueuedMessage.State.QUEUED
    assert stored.customer == cast.a.customer and stored.mailbox == cast.a.mailbox and stored.credential is None
    assert stored.domain == cast.a.domain and stored.message_id.startswith("<")
    assert stored.mail_from == "info@alpha.test" and stored.header_from == "info@alpha.test"
    assert stored.subject == "Quarterly report" and stored.client_ip == "127.0.0.1"
    assert stored.tls_version in ("TLSv1.2", "TLSv1.3")
    assert sorted(stored.recipients.values_list("address", flat=True)) == ["bob@example.org", "carol@example.net"]
    assert stored.size == len(bytes(stored.content))


def test_database_and_hashing_work_never_runs_on_the_event_loop(relay, cast, login, monkeypatch):
    from relay.models import VerifiedLogin
    from relay.smtpd import server
    from relay.submission import auth

    seen = []

    def watched(func):
        def wrapper(*args, **kwargs):
            try:
                asyncio.get_running_loop()
                seen.append((func.__name__, "event loop"))
            except RuntimeError:
                seen.append((func.__name__, threading.current_thread().name))
            return func(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(auth, "lookup_many", watched(auth.lookup_many))
    monkeypatch.setattr(auth, "lookup_on_loop", watched(auth.lookup_on_loop))
    monkeypatch.setattr(auth.hashing, "check_hash", watched(auth.hashing.check_hash))
    monkeypatch.setattr(auth, "generations_many", watched(auth.generations_many))
    monkeypatch.setattr(server, "accept_messages", watched(server.accept_messages))
    monkeypatch.setattr(server, "accept_messages_on_loop", watched(server.accept_messages_on_loop))
    VerifiedLogin.objects.all().delete()  # forget earlier verifications: this login must hash
    with submission_client(relay.submission, auth=login) as client:
        assert send(client, sender=login[0], recipients=["bob@example.org"], data=message(sender=login[0]))[-1][0] == 250
    # On PostgreSQL the AUTH lookup and the login generations at MAIL are read, and the accept written, through
    # psycopg's non-blocking connections on the loop instead (relay.loop_reads; tests/relay/submission/
    # test_revocation.py, test_auth.py, test_group_commit.py): Django's blocking calls would raise there.
    if connection.vendor == "postgresql":
        assert seen[0] == ("lookup_on_loop", "event loop"), seen
        assert seen[2] == ("accept_messages_on_loop", "event loop"), seen
        del seen[2], seen[0]
        blocking_reads = ["check_hash"]
    else:
        blocking_reads = ["lookup_many", "check_hash", "generations_many", "accept_messages"]
    assert [name for name, _ in seen] == blocking_reads
    assert dict(seen)["check_hash"].startswith("relay-hash"), seen
    assert all(thread.startswith("relay-db") for name, thread in seen if name != "check_hash"), seen


def test_a_repeated_recipient_is_stored_and_counted_once(relay, cast, login):
    with submission_client(relay.submission, auth=login) as client:
        replies = send(client, sender=login[0], recipients=["bob@example.org", "bob@EXAMPLE.org", "bob@example.org"],
                       data=message(sender=login[0]))
    assert [code for code, _ in replies] == [250, 250, 250, 250, 354, 250]
    assert list(QueuedMessage.objects.get().recipients.values_list("address", flat=True)) == ["bob@example.org"]
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk)["hour"] == 1


def test_starttls_when_tls_is_already_active_is_refused(relay, login):
    with submission_client(relay.submission) as client:
        assert client.docmd("STARTTLS") == (554, b"5.5.1 TLS already active")
        assert client.noop()[0] == 250
    with smtps_client(relay.smtps) as client:
        assert client.docmd("STARTTLS") == (554, b"5.5.1 TLS already active")
        assert client.noop()[0] == 250


def test_mail_from_auth_parameter_is_accepted_and_ignored(relay, cast, login):
    with submission_client(relay.submission, auth=login) as client:
        assert client.docmd("MAIL", f"FROM:<{login[0]}> AUTH=<> BODY=8BITMIME") == (250, b"2.1.0 Sender OK")
        assert client.docmd("RCPT", "TO:<bob@example.org>")[0] == 250


def test_received_header_writes_an_ipv6_client_as_an_address_literal():
    from datetime import UTC, datetime

    from relay.submission.accept import Headers, trace_headers

    head = trace_headers(queue_id="ABC", helo="pc", client_ip="2001:db8::7", tls_version="TLSv1.3",
                         recipients=["a@example.org", "b@example.org"], headers=Headers(message_id="<x@y>", has_date=True),
                         sender_domain="alpha.test", now=datetime(2026, 11, 2, 10, 0, tzinfo=UTC)).decode()
    assert head == ("Received: from pc ([IPv6:2001:db8::7])\r\n\tby relay.test (hostingmail) with ESMTPSA (TLSv1.3) "
                    "id ABC;\r\n\tMon, 02 Nov 2026 10:00:00 +0000\r\n")
