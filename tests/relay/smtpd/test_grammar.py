"""Findings of the SMTP grammar fuzzing (issue 17, point 12): each a proper 5xx, the session still usable, nothing
of a refused line run, nothing run after a closing reply, no reply echoing the client, no hang, no traceback."""

import asyncio
import logging
import socket
import ssl
import time

import pytest

from relay.models import QueuedMessage
from relay.smtpd import fairloop
from relay.submission.policy import Reject, check_path, size_parameter
from tests.support.raw_smtp import Closed, RawClient, ready_session
from tests.support.smtp import client_context, message

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_auth_answer_longer_than_a_line_is_refused_whole_and_none_of_it_runs(relay, login):
    with ready_session(relay.submission) as client:
        assert client.command("AUTH PLAIN").startswith(b"334")
        client.send(b"A" * 13000)
        time.sleep(0.3)  # the end of the line arrives later, as a command would
        client.send(b"QUIT\r\n")
        assert client.reply()[-1].startswith(b"500 5.5.2 Line too long")
        assert client.command("NOOP").startswith(b"250")


def test_size_in_non_ascii_digits_is_a_syntax_error(relay, login):
    with ready_session(relay.submission, login) as client:
        reply = client.command(f"MAIL FROM:<{login[0]}> SIZE=\u00b2".encode())
        assert reply.startswith(b"501 5.5.4"), reply
        assert client.command(f"MAIL FROM:<{login[0]}> SIZE=100").startswith(b"250")
    assert size_parameter(["SIZE=\u00b2"]) is None
    assert size_parameter(["size=42"]) == 42


@pytest.mark.parametrize("argument", [b"\xff\xfe", b"user@", b"<\xc3(@x>", b"user@\x01"])
def test_vrfy_of_a_bad_address_is_a_5xx_that_echoes_nothing(relay, login, argument):
    with ready_session(relay.submission, login) as client:
        reply = client.command(b"VRFY " + argument)
        assert reply.startswith(b"501 5.1.3") or reply.startswith(b"252 2.1.5"), reply
        assert argument not in reply
        assert client.command("NOOP").startswith(b"250")


def test_a_sender_that_is_not_utf_8_is_refused_with_smtputf8(relay, login):
    domain = login[0].split("@")[1]
    with ready_session(relay.submission, login) as client:
        reply = client.command(b"MAIL FROM:<\xff\xfeuser@" + domain.encode() + b"> SMTPUTF8")
        assert reply.startswith(b"501 5.6.7"), reply
        assert client.command(f"MAIL FROM:<{login[0]}>").startswith(b"250")
    with pytest.raises(Reject):
        check_path("<\udcffuser@example.org>", smtputf8=True)


@pytest.mark.parametrize("closer", [b"BOGUS\r\n" * 5, b"QUIT\r\n"], ids=["too-many-unknown", "quit"])
def test_nothing_pipelined_behind_a_closing_reply_runs(relay, login, closer):
    client = ready_session(relay.submission, login)
    data = message(sender=login[0]).replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n"
    client.send(closer + f"MAIL FROM:<{login[0]}>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".encode() + data)
    replies = []
    with pytest.raises(Closed):
        while True:
            replies.append(client.line())
    time.sleep(1)  # the TLS connection stays open (no close_notify from us): the session could go on
    client.close()
    assert replies[-1].startswith((b"502 5.5.1", b"221")), replies
    assert not any(line.startswith((b"250", b"354")) for line in replies), replies
    assert QueuedMessage.objects.count() == 0


def test_an_unknown_command_is_not_echoed(relay):
    with ready_session(relay.submission) as client:
        reply = client.command(b"A\rTRN")
        assert reply == b"500 5.5.2 Error: command not recognized"


def test_starttls_behind_a_large_pipelined_batch_does_not_hang(relay):
    with RawClient(relay.submission, timeout=5) as client:
        client.reply()
        client.command("EHLO client.test")
        client.send(b"STARTTLS\r\n" + b"NOOP\r\n" * 5000)
        assert client.line().startswith(b"220")
        started = time.monotonic()
        try:  # the pipelined commands are dropped (RFC 3207 4.2): the handshake goes on, or fails at once
            tls = client_context().wrap_socket(client.sock)
            tls.sendall(b"EHLO client.test\r\n")
            assert tls.recv(1000).startswith(b"250")
        except (ssl.SSLError, ConnectionError):
            pass
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("implicit", [True, False], ids=["port-465", "starttls"])
def test_a_stalled_tls_handshake_is_dropped_after_the_time_limit(relay_factory, settings, implicit):
    settings.RELAY_TLS_HANDSHAKE_TIMEOUT = 0.5
    relay = relay_factory()
    with socket.create_connection(("127.0.0.1", relay.smtps if implicit else relay.submission), timeout=10) as sock:
        if not implicit:
            sock.sendall(b"EHLO client.test\r\nSTARTTLS\r\n")
        started = time.monotonic()
        while sock.recv(1000):  # the greeting and replies, if any, then the close
            pass
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "after-starttls"])
def test_a_client_hanging_up_at_once_is_noticed_at_once(relay, tls, monkeypatch):
    real_fair_share = fairloop.fair_share

    async def busy_loop():  # a session waiting for its turn, as in a burst of connections, when the FIN comes
        await asyncio.sleep(0.2)
        await real_fair_share()

    monkeypatch.setattr(fairloop, "fair_share", busy_loop)
    with RawClient(relay.submission, timeout=5) as client:
        if tls:
            client.reply()
            client.command("EHLO client.test")
            client.starttls()
        client.sock.shutdown(socket.SHUT_WR)
        assert client.closed(wait=3)
    deadline = time.monotonic() + 3
    while relay.relay.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not relay.relay.sessions


@pytest.mark.parametrize("implicit", [True, False], ids=["port-465", "starttls"])
def test_a_failed_tls_handshake_is_one_info_line_without_traceback(relay, caplog, implicit):
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", relay.smtps if implicit else relay.submission), timeout=5) as sock:
        if not implicit:
            sock.sendall(b"EHLO client.test\r\nSTARTTLS\r\n")
            time.sleep(0.2)
        sock.sendall(b"this is not a TLS ClientHello\r\n" * 4)
        while True:
            try:
                if not sock.recv(1000):
                    break
            except ConnectionError:
                break
    # The relay logs the failure on its own loop, maybe just after the hang-up the client saw.
    deadline = time.monotonic() + 5
    while not any("tls_failed" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert any("tls_failed" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_a_large_message_is_spooled_and_stored_whole(relay_factory, settings, login):
    settings.RELAY_SPOOL_THRESHOLD = 4096
    relay = relay_factory()
    body = b"".join(b".line %d of a large message\r\n" % i for i in range(3000))
    with ready_session(relay.submission, login) as client:
        assert client.command(f"MAIL FROM:<{login[0]}>").startswith(b"250")
        assert client.command("RCPT TO:<bob@example.org>").startswith(b"250")
        assert client.command("DATA").startswith(b"354")
        content = message(sender=login[0]) + body
        client.send(content.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        assert client.reply()[-1].startswith(b"250 2.0.0")
    stored = bytes(QueuedMessage.objects.get().content)
    assert stored.endswith(content)
