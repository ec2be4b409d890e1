"""A finished session is freed by reference counting alone: nothing of it is left for the cycle collector, whose
full collections stop the event loop for as long as they walk (10-40 ms with every session's ~90 objects of cyclic
garbage in the oldest generation)."""

import gc
import smtplib
import socket
import weakref

import pytest

from tests.support.smtp import HOST, auth_plain, client_context, message, send, smtps_client, submission_client
from tests.support.workers import wait_until


def the_session(relay):
    """Weak references to the one session of the relay and to its connection's socket transport."""
    wait_until(lambda: len(relay.relay.sessions) == 1, timeout=5, what="the client's session")
    session = next(iter(relay.relay.sessions))
    transport = session._original_transport or session.transport
    refs = [weakref.ref(session), weakref.ref(transport)]
    del session, transport
    return refs


def sent_and_quit(relay, login):
    client = submission_client(relay.submission, auth=login)
    refs = the_session(relay)
    send(client, sender=login[0], recipients=["someone@example.org"], data=message(sender=login[0]))
    client.quit()
    return refs


def refused_sender_and_dropped(relay, login):
    client = smtps_client(relay.smtps, auth=login)
    refs = the_session(relay)
    assert client.mail("someone@elsewhere.test")[0] == 553
    client.close()  # no QUIT
    return refs


def failed_auth(relay, login):
    client = submission_client(relay.submission)
    refs = the_session(relay)
    assert auth_plain(client, login[0], "not the password")[0] == 535
    client.close()
    return refs


def plain_text_on_the_tls_port(relay, login):
    raw = socket.create_connection((HOST, relay.smtps), timeout=10)
    refs = the_session(relay)
    raw.sendall(b"EHLO client.test\r\n")  # not a TLS ClientHello: the handshake fails
    raw.settimeout(10)
    try:
        while raw.recv(4096):
            pass
    except OSError:
        pass
    raw.close()
    return refs


def unfinished_auth(relay, login):
    client = smtplib.SMTP(HOST, relay.submission, timeout=10)
    refs = the_session(relay)
    client.starttls(context=client_context())
    client.ehlo("client.test")
    client.putcmd("AUTH", "LOGIN")
    assert client.getreply()[0] == 334
    client.close()  # gone in the middle of the exchange
    return refs


@pytest.mark.parametrize("session", [sent_and_quit, refused_sender_and_dropped, failed_auth,
                                     plain_text_on_the_tls_port, unfinished_auth])
def test_a_finished_session_is_freed_without_the_cycle_collector(relay, login, settings, session):
    settings.RELAY_AUTH_DELAY_BASE = 0.001
    session(relay, login)  # a first one of its kind: whatever is made once per process, lazily, is made now
    wait_until(lambda: not relay.relay.sessions, timeout=5, what="the end of the first session")
    gc.collect()
    gc.disable()
    try:
        refs = session(relay, login)
        wait_until(lambda: all(ref() is None for ref in refs), timeout=5,
                   what="the session and its transport freed with the cycle collector off")
    finally:
        gc.enable()
