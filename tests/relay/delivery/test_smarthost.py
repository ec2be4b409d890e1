"""Smart hosts: URL parsing, and delivery through a real aiosmtpd server that requires AUTH over TLS."""

import pytest

from relay.delivery import attempts, smarthost
from relay.delivery.smtpclient import ConnectionCache
from relay.models import QueuedMessage
from relay.smtpd.tls import server_context
from tests.support.delivery import queue
from tests.support.mx import start_mx

State = QueuedMessage.State


@pytest.mark.parametrize("url, expected", [
    ("smtp://u:p%40ss@relay.example.net:2525?tls=starttls",
     smarthost.SmartHost("relay.example.net", 2525, "starttls", "u", "p@ss")),
    ("smtp://relay.example.net", smarthost.SmartHost("relay.example.net", 587, "starttls")),
    ("smtp://127.0.0.1:25?tls=none", smarthost.SmartHost("127.0.0.1", 25, "none")),
    ("smtps://u:p@relay.example.net", smarthost.SmartHost("relay.example.net", 465, "implicit", "u", "p")),
    ("smtp://relay.example.net?verify=no", smarthost.SmartHost("relay.example.net", 587, verify=False)),
])
def test_parse(url, expected):
    assert smarthost.parse(url) == expected


@pytest.mark.parametrize("url, error", [
    ("http://relay.example.net", "smtp:// or smtps://"),
    ("smtp://", "names no host"),
    ("smtp://relay.example.net:99999", "port"),
    ("smtp://relay.example.net?tls=maybe", "starttls or none"),
    ("smtps://relay.example.net?tls=none", "implicit TLS"),
    ("smtp://relay.example.net?colour=red", "Unknown smart host option: colour"),
    ("smtp://u:p@relay.example.net?tls=none", "never sent to a smart host without TLS"),
])
def test_parse_errors_say_what_is_wrong(url, error):
    with pytest.raises(smarthost.SmartHostError, match=error):
        smarthost.parse(url)


def test_password_not_in_repr():
    assert "hunter2" not in repr(smarthost.parse("smtp://user:hunter2@relay.example.net"))


@pytest.fixture
def auth_host(relay_cert):
    servers = []

    def start(**options):
        server = start_mx(tls_context=server_context(*relay_cert), users={"relayuser": "s3cret pw"}, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def run(message) -> str:
    state = attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0))
    message.refresh_from_db()
    return state


@pytest.mark.django_db
@pytest.mark.parametrize("implicit", [False, True])
def test_all_mail_through_the_smart_host_with_auth(cast, settings, auth_host, implicit):
    host = auth_host(implicit_tls=implicit)
    scheme = "smtps" if implicit else "smtp"
    settings.SMARTHOST_URL = f"{scheme}://relayuser:s3cret%20pw@127.0.0.1:{host.port}?verify=no"
    # No DNS server is configured for this test: the MX lookup is skipped altogether.
    settings.DNS_NAMESERVERS, settings.DNS_PORT = ["127.0.0.1"], 9
    message = queue(cast.a, "someone@far-away.example", "other@elsewhere.example")
    assert run(message) == State.DELIVERED, message.recipients.first().last_reply
    assert len(host.messages) == 2, "one transaction per recipient domain"
    assert all(got.auth == "relayuser" and got.tls for got in host.messages)
    assert {r for m in host.messages for r in m.rcpt_tos} == {"someone@far-away.example", "other@elsewhere.example"}
    assert set(message.recipients.values_list("remote_host", flat=True)) == {"127.0.0.1"}


@pytest.mark.django_db
def test_wrong_password_or_unverified_certificate_defers(cast, settings, auth_host):
    host = auth_host()
    settings.SMARTHOST_URL = f"smtp://relayuser:wrong@127.0.0.1:{host.port}?verify=no"
    message = queue(cast.a, "someone@far-away.example")
    assert run(message) == State.DEFERRED
    assert "refused the credentials" in message.recipients.get().last_reply
    settings.SMARTHOST_URL = f"smtp://relayuser:s3cret%20pw@127.0.0.1:{host.port}"  # self-signed: verify fails
    message = queue(cast.a, "someone@far-away.example", subject="verify")
    assert run(message) == State.DEFERRED
    assert "CERTIFICATE_VERIFY_FAILED" in message.recipients.get().last_reply
    assert host.messages == []


@pytest.mark.django_db
def test_sender_domain_smart_host_wins(cast, settings, auth_host):
    host = auth_host()
    settings.SMARTHOST_URL = "smtp://relayuser:x@127.0.0.1:9?verify=no"  # nothing listens there
    cast.a.domain.smarthost_url = f"smtp://relayuser:s3cret%20pw@127.0.0.1:{host.port}?verify=no"
    cast.a.domain.save()
    message = queue(cast.a, "someone@far-away.example")
    assert run(message) == State.DELIVERED and len(host.messages) == 1
    other = queue(cast.b, "someone@far-away.example")
    assert run(other) == State.DEFERRED and "refused" in other.recipients.get().last_reply


@pytest.mark.django_db
def test_smart_host_without_starttls_is_not_used_in_plain_text_unless_configured(cast, settings):
    plain = start_mx(users={"relayuser": "pw"})
    try:
        settings.SMARTHOST_URL = f"smtp://relayuser:pw@127.0.0.1:{plain.port}"
        message = queue(cast.a, "someone@far-away.example")
        assert run(message) == State.DEFERRED
        assert "does not offer STARTTLS" in message.recipients.get().last_reply and plain.messages == []
        settings.SMARTHOST_URL = f"smtp://relayuser:pw@127.0.0.1:{plain.port}?tls=none"  # loopback only
        message = queue(cast.a, "someone@far-away.example", subject="plain")
        assert run(message) == State.DELIVERED
        assert [(m.auth, m.tls) for m in plain.messages] == [("relayuser", False)]
    finally:
        plain.stop()
