"""Per-client-address connection limits and the limit on commands without progress (issue 17, point 6)."""

import time

import pytest

from relay.smtpd.limits import ClientLimits
from tests.support.raw_smtp import RawClient, ready_session

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = b"421 4.7.0 Too many connections from your address"


def greeting(port: int, **options) -> tuple[RawClient, bytes]:
    client = RawClient(port, **options)
    return client, client.reply()[-1]


@pytest.mark.parametrize("implicit", [False, True], ids=["587", "465"])
def test_connections_over_the_per_client_limit_are_refused_with_421(relay_factory, settings, implicit):
    settings.RELAY_MAX_CONNECTIONS_PER_CLIENT = 3
    relay = relay_factory()
    port = relay.smtps if implicit else relay.submission
    held = [greeting(port, implicit_tls=implicit) for _ in range(3)]
    assert all(reply.startswith(b"220") for _, reply in held)
    refused, reply = greeting(port, implicit_tls=implicit)
    assert reply.startswith(REFUSED), reply
    assert refused.closed()
    held[0][0].close()
    deadline = time.monotonic() + 3
    while relay.relay.clients.open.get("127.0.0.1", 0) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    again, reply = greeting(port, implicit_tls=implicit)
    assert reply.startswith(b"220"), reply
    for client, _ in [*held, (again, None)]:
        client.close()


def test_connections_over_the_per_client_rate_are_refused_with_421(relay_factory, settings):
    settings.RELAY_MAX_CONNECTIONS_PER_CLIENT = 0
    settings.RELAY_CONNECTION_RATE_PER_CLIENT = 5
    relay = relay_factory()
    replies = []
    for _ in range(6):
        client, reply = greeting(relay.submission)
        replies.append(reply[:3])
        client.close()
    assert replies == [b"220"] * 5 + [b"421"]


def test_exempt_networks_are_never_refused(relay_factory, settings):
    settings.RELAY_MAX_CONNECTIONS_PER_CLIENT = 1
    settings.RELAY_CONNECTION_LIMIT_EXEMPT = ["127.0.0.0/8"]
    relay = relay_factory()
    clients = [greeting(relay.submission) for _ in range(3)]
    assert [reply[:3] for _, reply in clients] == [b"220"] * 3
    for client, _ in clients:
        client.close()


def test_the_default_limit_is_postfix_anvil_s_fifty(settings):
    assert settings.RELAY_MAX_CONNECTIONS_PER_CLIENT == 50
    limits = ClientLimits(max_connections=50, rate_per_minute=0)
    assert all(limits.admit("192.0.2.1") for _ in range(50))
    assert not limits.admit("192.0.2.1")
    assert limits.admit("192.0.2.2")  # per address
    limits.release("192.0.2.1")
    assert limits.admit("192.0.2.1")


def test_rate_counts_the_last_minute_only():
    limits = ClientLimits(max_connections=0, rate_per_minute=2)
    assert limits.admit("192.0.2.1", now=0) and limits.admit("192.0.2.1", now=1)
    assert not limits.admit("192.0.2.1", now=2)
    assert not limits.admit("192.0.2.1", now=60.5)  # refused attempts count: those at 1 and 2 s
    assert limits.admit("192.0.2.1", now=62.5)  # the attempt at 2 s is over a minute old
    assert not limits.admit("192.0.2.1", now=62.6)



@pytest.mark.parametrize("command", ["NOOP", "RSET", "VRFY user@example.org", "HELP", "EHLO client.test"])
def test_commands_without_progress_end_the_session_with_421(relay_factory, settings, login, command):
    settings.RELAY_MAX_JUNK_COMMANDS = 10
    relay = relay_factory()
    with ready_session(relay.submission, login) as client:  # two EHLOs so far
        replies = [client.command(command)[:3] for _ in range(8)]
        assert all(reply in (b"250", b"252") for reply in replies), replies
        assert client.command(command).startswith(b"421 4.7.0 Too many commands without progress")
        assert client.closed()


def test_an_accepted_message_resets_the_count(relay_factory, settings, login):
    settings.RELAY_MAX_JUNK_COMMANDS = 5
    relay = relay_factory()
    with ready_session(relay.submission, login) as client:
        for _ in range(3):
            assert client.command("NOOP").startswith(b"250")
        assert client.command(f"MAIL FROM:<{login[0]}>").startswith(b"250")
        assert client.command("RCPT TO:<bob@example.org>").startswith(b"250")
        assert client.command("DATA").startswith(b"354")
        assert client.command(f"From: {login[0]}\r\n\r\nHi\r\n.").startswith(b"250")
        for _ in range(5):
            assert client.command("NOOP").startswith(b"250")
