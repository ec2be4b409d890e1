"""What the MX makes ready before it listens (relay.smtpd.mx.MxHandler.prepare), so that the first sessions after a
start neither wait for it nor pay for it."""

import logging

import pytest
from celery import current_app
from django.db import OperationalError, connection
from kombu import Connection

from relay.smtpd import mx as mx_module
from relay.submission.accept import Notifier
from tests.support.inbound import mta_client
from tests.support.smtp import send

pytestmark = pytest.mark.django_db(transaction=True)


def _has_connection() -> bool:
    return connection.connection is not None


def test_database_connections_are_open_before_the_first_session(mx_factory, cast):
    running = mx_factory()
    db = running.mx.db
    # Their threads have started, and each holds its connection (a job given to the pool now runs on one of them).
    assert db.executor._threads and len(db.lanes[0]._threads) == 1
    assert all(db.executor.submit(_has_connection).result() for _ in range(len(db.executor._threads) * 4))
    assert db.lanes[0].submit(_has_connection).result() is True
    if connection.vendor == "postgresql":  # the event loop's own, for the route generation
        reader = running.mx.handler.generations
        assert reader.conn is not None and not reader.conn.closed


def test_a_database_not_reachable_at_start_does_not_stop_the_mx(mx_factory, cast, dns_server, monkeypatch, caplog):
    dns_server(txt=["other.example,v=spf1 -all"])

    def unreachable():
        raise OperationalError("connection refused")

    monkeypatch.setattr(mx_module, "_connected", unreachable)
    with caplog.at_level(logging.WARNING, logger="hostingmail.relay"):
        running = mx_factory()
    assert any("event=prepare" in r.getMessage() and "database unavailable" in r.getMessage() for r in caplog.records)
    with mta_client(running.port) as client:  # and serves once the database answers
        replies = send(client, sender="someone@sender.example", recipients=["info@alpha.test"],
                       data=b"From: someone@sender.example\r\nSubject: Hello\r\n\r\nHi.\r\n")
    assert replies[-1][0] == 250, replies


def test_the_delivery_notices_publisher_is_made_ready_without_a_connection(monkeypatch):
    def broker_down(self):
        raise ConnectionRefusedError("the broker is down")

    # Nothing is opened: a broker that is down never stops a start (its notices wait for the sweep, as before).
    monkeypatch.setattr(Connection, "_connection_factory", broker_down)
    monkeypatch.setattr(current_app.amqp, "_producer_pool", None)
    Notifier().prepare()
    assert current_app.amqp._producer_pool is not None
