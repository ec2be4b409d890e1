"""Delivery to Postfix's smtp-sink as the remote MX: accepting, refusing for good, refusing for now."""

import pytest

from relay.delivery import attempts
from relay.delivery.smtpclient import ConnectionCache
from relay.models import QueuedMessage
from tests.support.delivery import queue, routes  # noqa: F401
from tests.support.mx import SmtpSink

pytestmark = pytest.mark.django_db
State = QueuedMessage.State


@pytest.fixture
def sink(settings, tmp_path):
    started = []

    def start(*options: str) -> SmtpSink:
        server = SmtpSink(*options, dump_dir=tmp_path)
        started.append(server)
        settings.DELIVERY_PORT = server.port
        return server

    yield start
    for server in started:
        server.stop()


def run(message) -> QueuedMessage:
    attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0))
    message.refresh_from_db()
    return message


def test_delivered_to_smtp_sink(cast, routes, sink):
    server = sink()
    message = run(queue(cast.a, "bob@b.test", subject="To the sink"))
    assert message.state == State.DELIVERED
    [dump] = server.dumps()
    assert b"Subject: To the sink" in dump and b"bob@b.test" in dump


@pytest.mark.parametrize("option, state, code", [("-f", State.BOUNCED, 5), ("-r", State.DEFERRED, 4)])
def test_smtp_sink_refusing_recipients(cast, routes, sink, option, state, code):
    sink(option, "rcpt")
    message = run(queue(cast.a, "bob@b.test"))
    assert message.state == state
    recipient = message.recipients.get()
    assert recipient.last_code // 100 == code and recipient.remote_host == "mx1.b.test"
    assert message.bounces.count() == (1 if state == State.BOUNCED else 0)


def test_smtp_sink_hanging_up_at_data_defers(cast, routes, sink):
    sink("-Q", "data")
    message = run(queue(cast.a, "bob@b.test"))
    assert message.state == State.DEFERRED and message.recipients.get().last_code == 421
