"""The relay's log tells a normal end of session from a failure: a QUIT over TLS 1.3 is a plain close (not a
ConnectionResetError), and a bare TCP probe of the implicit-TLS port (a load balancer's health check, a port scan)
is not a failed TLS handshake."""

import logging
import smtplib
import socket
import ssl
import time

import pytest

from tests.support.smtp import client_context

pytestmark = pytest.mark.django_db(transaction=True)


def _tls13() -> ssl.SSLContext:
    context = client_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def _relay_lines(caplog, event: str, count: int = 1) -> list[str]:
    """The relay's log lines of one event, waited for: the relay logs on its own loop, after the client is done."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [r.getMessage() for r in caplog.records if r.name == "hostingmail.relay"]
        found = [line for line in lines if line.startswith(f"event={event} ")]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {event} line in {lines}")


@pytest.mark.parametrize("implicit", [True, False], ids=["port-465", "starttls"])
def test_quit_over_tls13_is_logged_as_a_plain_close(relay, caplog, implicit):
    caplog.set_level(logging.INFO, logger="hostingmail.relay")
    for _ in range(3):  # a reset depends on when the client's close meets the server's: try more than once
        if implicit:
            client = smtplib.SMTP_SSL("127.0.0.1", relay.smtps, context=_tls13(), timeout=10)
        else:
            client = smtplib.SMTP("127.0.0.1", relay.submission, timeout=10)
            client.starttls(context=_tls13())
        assert client.sock.version() == "TLSv1.3"
        client.ehlo("client.test")
        assert client.quit()[0] == 221
    lines = _relay_lines(caplog, "disconnect", count=3)
    assert all("result=closed" in line for line in lines), lines
    everything = " ".join(r.getMessage() for r in caplog.records)
    assert "ConnectionResetError" not in everything and "BrokenPipeError" not in everything
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_a_bare_tcp_probe_of_the_tls_port_is_not_a_tls_failure(relay, caplog):
    caplog.set_level(logging.INFO, logger="hostingmail.relay")
    for _ in range(3):
        socket.create_connection(("127.0.0.1", relay.smtps), timeout=5).close()
    lines = _relay_lines(caplog, "disconnect", count=3)
    assert all("result=\"closed before TLS\"" in line for line in lines), lines
    assert not any("tls_failed" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_a_client_that_sends_no_tls_on_the_tls_port_is_still_a_tls_failure(relay, caplog):
    caplog.set_level(logging.INFO, logger="hostingmail.relay")
    with socket.create_connection(("127.0.0.1", relay.smtps), timeout=5) as sock:
        sock.sendall(b"EHLO client.test\r\n")
        try:
            while sock.recv(1000):
                pass
        except ConnectionError:
            pass
    assert _relay_lines(caplog, "tls_failed")
