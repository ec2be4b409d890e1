"""Fixtures for delivery tests: a recording MX, dnsmasq with the routes the tests need, queued messages.

Import the fixtures into a test module: ``from tests.support.delivery import mx, routes  # noqa: F401``.
"""

from contextlib import contextmanager
from unittest import mock

import pytest
from django.utils import timezone

from relay import handoff
from relay.models import QueuedMessage, Recipient
from relay.smtpd.tls import server_context
from tests.support.mx import start_mx


@contextmanager
def handed_over(**kwargs):
    """Stands in for the broker: each delivery task handed over (relay.handoff) is a call `send(message_ids)`."""
    send = mock.Mock(**kwargs)

    def publish(name, args):
        assert name == handoff.DELIVER_MESSAGES
        return send(*args)

    with mock.patch.object(handoff, "send", publish):
        yield send


# 127.0.0.2 is loopback too, but nothing listens there on the MX's port: a host that is down.
DOWN = "127.0.0.2"


@pytest.fixture
def mx(settings, relay_cert):
    """The recording MX with STARTTLS (a self-signed certificate, as many real MXes have)."""
    server = start_mx(tls_context=server_context(*relay_cert))
    settings.DELIVERY_PORT = server.port
    settings.DELIVERY_REUSE_SECONDS = 30.0
    yield server
    server.stop()


def route_records(cast) -> dict:
    """b.test and the cast's domains: one MX on loopback; pair.test: first MX down; nullmx.test: RFC 7505;
    amx.test: no MX, an A record; hang.example: never answers; the cast's DKIM keys as TXT records."""
    records = {
        "mx": ["b.test,mx1.b.test,10", "pair.test,down.pair.test,10", "pair.test,up.pair.test,20",
               "private.test,mx.private.test,10"],
        "host": ["mx1.b.test,127.0.0.1", f"down.pair.test,{DOWN}", "up.pair.test,127.0.0.1", "amx.test,127.0.0.1",
                 "mx.private.test,10.255.255.1"],
        "raw": ["--dns-rr=nullmx.test,15,000000"],
        "silent": ["hang.example"],
        "txt": [],
    }
    for tenant in (cast.a, cast.b, cast.direct):
        name = tenant.domain.name
        records["mx"].append(f"{name},mx1.b.test,10")
        records["txt"].append(f"{tenant.domain.dkim_selector}._domainkey.{name},"
                              f"v=DKIM1; k=rsa; p={tenant.domain.dkim_public_key}")
    return records


@pytest.fixture
def routes(dns_server, cast):
    return dns_server(**route_records(cast))


def queue(tenant, *recipients: str, body: str = "Hello.\r\n", subject: str = "Test", mail_from: str | None = None,
          **fields) -> QueuedMessage:
    """A message accepted from the tenant's mailbox, as relay.submission.accept stores it."""
    sender = tenant.mailbox.address if mail_from is None else mail_from
    content = (f"Received: from client.test ([127.0.0.1]) by relay.test\r\nFrom: {sender or 'x@y.test'}\r\n"
               f"To: {', '.join(recipients)}\r\nSubject: {subject}\r\nMessage-ID: <{subject.replace(' ', '')}@t>\r\n"
               f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n{body}").encode()
    message = QueuedMessage.objects.create(
        customer=tenant.customer, domain=tenant.domain, mailbox=tenant.mailbox, mail_from=sender,
        header_from=sender, subject=subject, message_id=f"<{subject}@t>", size=len(content), content=content,
        client_ip="127.0.0.1", next_attempt_at=fields.pop("next_attempt_at", timezone.now()), **fields)
    Recipient.objects.bulk_create([Recipient(message=message, address=r) for r in recipients])
    return message
