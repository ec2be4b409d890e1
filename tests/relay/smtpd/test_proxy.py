"""PROXY protocol (v1 and v2) from trusted load balancers only; the client address it carries is the one used."""

import ipaddress
import smtplib
import socket
import struct

import pytest

from accounts.services.credentials import credential_create
from relay.models import AuthFailure, QueuedMessage
from tests.support.smtp import HOST, auth_plain, client_context, message, send

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = "203.0.113.9"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(source: str = CLIENT) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 40000 587\r\n".encode()


def proxy_v2(source: str = CLIENT) -> bytes:
    addresses = ipaddress.ip_address(source).packed + ipaddress.ip_address("127.0.0.1").packed + struct.pack("!HH", 40000, 587)
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


class ProxiedSMTP(smtplib.SMTP):
    """smtplib that sends a PROXY header first, as a load balancer would."""

    def __init__(self, header: bytes, *args, **kwargs):
        self.header = header
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        sock.sendall(self.header)
        return sock


class ProxiedSMTPS(smtplib.SMTP):
    """Implicit TLS behind a load balancer: the PROXY header, then the TLS handshake."""

    def __init__(self, header: bytes, *args, **kwargs):
        self.header = header
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        sock.sendall(self.header)
        return client_context().wrap_socket(sock)


def submit_through_proxy(port: int, header: bytes, user: str, password: str, *, implicit: bool = False):
    if implicit:
        client = ProxiedSMTPS(header, HOST, port, local_hostname="client.test", timeout=10)
    else:
        client = ProxiedSMTP(header, HOST, port, local_hostname="client.test", timeout=10)
        client.starttls(context=client_context())
    with client:
        client.ehlo("client.test")
        assert auth_plain(client, user, password)[0] == 235
        return send(client, sender="info@alpha.test", recipients=["bob@example.org"],
                    data=message(sender="info@alpha.test"))


@pytest.mark.parametrize("header", [proxy_v1(), proxy_v2()], ids=["v1", "v2"])
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_trusted_proxy_header_gives_the_client_address(relay_factory, cast, header, implicit):
    relay = relay_factory(proxy_from=["127.0.0.1/32"])
    # The credential only works from the real client's network: the PROXY header must have been used.
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox,
                            allowed_networks="203.0.113.0/24")
    port = relay.smtps if implicit else relay.submission
    replies = submit_through_proxy(port, header, new.credential.username, new.secret, implicit=implicit)
    assert replies[-1][0] == 250
    stored = QueuedMessage.objects.get()
    assert stored.client_ip == CLIENT
    assert f"([{CLIENT}])" in bytes(stored.content).decode()
    new.credential.refresh_from_db()
    assert new.credential.last_used_ip == CLIENT


def test_failed_logins_behind_the_proxy_count_for_the_real_client(relay_factory, cast, settings):
    settings.RELAY_AUTH_DELAY_BASE = settings.RELAY_AUTH_DELAY_MAX = 0.001
    relay = relay_factory(proxy_from=["127.0.0.1"])
    with ProxiedSMTP(proxy_v1(), HOST, relay.submission, timeout=10) as client:
        client.starttls(context=client_context())
        client.ehlo()
        assert auth_plain(client, "info@alpha.test", "wrong password!")[0] == 535
    assert list(AuthFailure.objects.values_list("client_ip", flat=True)) == [CLIENT]


def test_untrusted_peer_is_disconnected_even_with_a_header(relay_factory, cast):
    relay = relay_factory(proxy_from=["192.0.2.1"])
    for header in (proxy_v1(), b""):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            ProxiedSMTP(header, HOST, relay.submission, timeout=10)


def test_trusted_peer_without_a_header_is_disconnected(relay_factory, cast):
    relay = relay_factory(proxy_from=["127.0.0.1"])
    with socket.create_connection((HOST, relay.submission), timeout=10) as sock:
        sock.sendall(b"EHLO client.test\r\n")
        assert sock.recv(100) == b""
