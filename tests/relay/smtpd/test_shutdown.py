"""A stopping relay and a client half-way through its TLS handshake: the handshake finishes, then the client is told
421 4.3.2 over TLS (a reply it can act on), instead of an EOF inside the handshake."""

import logging
import socket

from tests.support.smtp import HOST, client_context
from tests.support.workers import wait_until


def read_reply(sock) -> str:
    data = b""
    while not data.endswith(b"\r\n") or data.split(b"\r\n")[-2][3:4] == b"-":
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


def stop_and_finish_handshake(relay, raw: socket.socket, caplog) -> str:
    caplog.set_level(logging.INFO, logger="hostingmail.relay")
    relay.stop_event.set()
    # The stop logs "shutdown" for the session and hangs up on it in the same turn of the loop: whatever the client
    # sends from here on is read after that hang-up.
    wait_until(lambda: "event=shutdown" in caplog.text, timeout=5, what="the stop reaching the session")
    tls = client_context().wrap_socket(raw, server_hostname="relay.test")  # the handshake, after the stop began
    tls.settimeout(10)
    return read_reply(tls)


def test_a_stop_during_starttls_lets_the_handshake_finish_then_says_421(relay, caplog):
    raw = socket.create_connection((HOST, relay.submission), timeout=10)
    assert read_reply(raw).startswith("220")
    raw.sendall(b"EHLO client.test\r\n")
    assert read_reply(raw).startswith("250")
    raw.sendall(b"STARTTLS\r\n")
    assert read_reply(raw).startswith("220")
    assert stop_and_finish_handshake(relay, raw, caplog).startswith("421 4.3.2")
    relay.thread.join(10)
    assert not relay.thread.is_alive()


def test_a_stop_before_the_implicit_tls_handshake_lets_it_finish_then_says_421(relay, caplog):
    raw = socket.create_connection((HOST, relay.smtps), timeout=10)
    wait_until(lambda: relay.relay.sessions, timeout=5, what="the client's session")
    assert stop_and_finish_handshake(relay, raw, caplog).startswith("421 4.3.2")
    relay.thread.join(10)
    assert not relay.thread.is_alive()
