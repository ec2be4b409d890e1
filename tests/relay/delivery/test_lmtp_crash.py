"""A Celery worker killed with SIGKILL in the middle of an LMTP delivery (the message sent, the reply not yet
read): after its lease runs out another worker delivers it again. LMTP has no transaction id, so the LMTP
server may hold the first copy too — at least once, never zero, and never more than once per killed attempt."""

import asyncio
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from django.db import connection, transaction
from django.utils import timezone

from relay.inbound.accept import InboundMessage, accept_inbound
from relay.inbound.rules import Accepted, Destination
from relay.models import QueuedMessage, Recipient
from tests.peers import free_port
from tests.relay.delivery.test_lmtp import dovecot, fetch_all, needs_postgresql  # noqa: F401
from tests.support.workers import broker_env, celery_processes, wait_until  # noqa: F401


def inbound(tenant, subject: str) -> InboundMessage:
    return InboundMessage(
        mail_from="someone@sender.example", content=f"Subject: {subject}\r\n\r\nhi\r\n".encode(),
        client_ip="127.0.0.1", helo="mta.sender.example", tls_version="", recipients=[Accepted(
            tenant.mailbox.address, (Destination(tenant.mailbox.pk, tenant.mailbox.address, tenant.customer.pk),), ())])


class StallingLmtp:
    """Records each DATA; while `stall` is set, never answers it (the worker waits on the reply)."""

    def __init__(self):
        self.received: list[bytes] = []
        self.stall = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.original_content)
        while self.stall.is_set():
            await asyncio.sleep(0.05)
        return "250 2.0.0 Saved"


class LmtpController(Controller):
    def factory(self):
        return LMTP(self.handler)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_lmtp_redelivers_after_the_lease(cast, celery_processes, tmp_path):
    handler = StallingLmtp()
    handler.stall.set()
    lmtp = LmtpController(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    lmtp.start()
    try:
        [message] = accept_inbound([InboundMessage(
            mail_from="someone@sender.example", content=b"Subject: crash\r\n\r\nhi\r\n", client_ip="127.0.0.1",
            helo="mta.sender.example", tls_version="", recipients=[Accepted(
                "info@alpha.test", (Destination(cast.a.mailbox.pk, "info@alpha.test", cast.a.customer.pk),), ())])],
            now=timezone.now() - timedelta(minutes=5))
        env = broker_env("filesystem://", tmp_path, DELIVERY_LEASE_SECONDS=4, DELIVERY_SWEEP_SECONDS=0.5,
                         LMTP_URL=f"127.0.0.1:{lmtp.port}")
        beat = celery_processes("beat", env)
        first = celery_processes("worker", env, "-P", "solo")
        wait_until(lambda: handler.received, timeout=60, what="the first worker's LMTP DATA", processes=[beat, first])
        first.kill()
        assert message.recipients.get().state == Recipient.State.QUEUED

        handler.stall.clear()
        second = celery_processes("worker", env, "-P", "solo")

        def delivered():
            message.refresh_from_db()
            return message.state == QueuedMessage.State.DELIVERED

        wait_until(delivered, timeout=60, what="delivery after the lease expired", processes=[beat, second])
        assert len(handler.received) == 2  # the killed attempt's copy, and the one acknowledged
        assert list(message.delivery_attempts.values_list("outcome", flat=True)) == ["delivered"]
    finally:
        lmtp.stop()


def _crash_setup(cast, dovecot, celery_processes, tmp_path):
    """A message due for delivery to a hosted mailbox, beat sweeping for it, and the auth and dict processes of
    Dovecot running (a first message delivered through its LMTP)."""
    from relay.delivery import lmtp

    [warm] = accept_inbound([inbound(cast.a, "warm-up")])
    assert [code for _, code, _ in lmtp.deliver_local(warm, list(warm.recipients.all()))] == [250]
    [message] = accept_inbound([inbound(cast.a, "crash")], now=timezone.now() - timedelta(minutes=5))
    env = broker_env("filesystem://", tmp_path, DELIVERY_LEASE_SECONDS=4, DELIVERY_SWEEP_SECONDS=0.5,
                     LMTP_URL=str(dovecot.lmtp_socket))
    return message, env, celery_processes("beat", env)


@contextmanager
def _worker_in_rcpt(dovecot, env, beat, celery_processes):
    """A worker in the message's LMTP transaction: LHLO and MAIL answered, its RCPT waiting on Dovecot's auth
    process (stopped) for the recipient's userdb lookup. Yields the worker and the auth processes' pids; auth runs
    again on leaving."""
    lookups = dovecot.userdb_lookups()
    auth = dovecot.pause("auth")
    try:
        first = celery_processes("worker", env, "-P", "solo")
        wait_until(lambda: dovecot.userdb_lookups() > lookups, timeout=60,
                   what="the worker's RCPT waiting on Dovecot's userdb lookup", processes=[beat, first])
        yield first, auth
    finally:
        dovecot.resume(auth)


def _waiting_on_this_transaction() -> bool:
    """Another PostgreSQL session waits for a lock this test's transaction holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
                       " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)))")
        return cursor.fetchone()[0]


def _delivered_by_a_new_worker(message, env, beat, celery_processes, dovecot) -> list[str]:
    second = celery_processes("worker", env, "-P", "solo")

    def delivered():
        message.refresh_from_db()
        return message.state == QueuedMessage.State.DELIVERED

    wait_until(delivered, timeout=60, what="delivery after the lease expired", processes=[beat, second])
    assert list(message.delivery_attempts.values_list("outcome", flat=True)) == ["delivered"]
    return [m["Subject"] for m in fetch_all(dovecot, "info@alpha.test")]


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_worker_killed_in_the_lmtp_transaction_with_dovecot_delivers_once(cast, dovecot, celery_processes, tmp_path):
    """Dovecot waits on its (paused) auth process for the RCPT's userdb lookup; the worker is killed there, before
    DATA: nothing was stored, and the next worker's delivery is the only copy."""
    message, env, beat = _crash_setup(cast, dovecot, celery_processes, tmp_path)
    with _worker_in_rcpt(dovecot, env, beat, celery_processes) as (first, _):
        first.kill()
    assert message.recipients.get().state == Recipient.State.QUEUED
    subjects = _delivered_by_a_new_worker(message, env, beat, celery_processes, dovecot)
    assert sorted(subjects) == ["crash", "warm-up"]


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_worker_killed_after_dovecot_stored_the_message_delivers_one_duplicate(cast, dovecot, celery_processes,
                                                                                 tmp_path):
    """The worker is killed after Dovecot stored the message and answered, before the outcome is committed (held
    back by a lock on its recipient row): the next worker delivers again. LMTP (RFC 2033) has no transaction id that
    would let the second delivery be matched with the first: one duplicate per killed attempt is what at-least-once
    delivery over LMTP allows, and never zero copies."""
    message, env, beat = _crash_setup(cast, dovecot, celery_processes, tmp_path)
    with _worker_in_rcpt(dovecot, env, beat, celery_processes) as (first, auth), transaction.atomic():
        Recipient.objects.select_for_update().get(message=message)  # its outcome will wait for this
        dovecot.resume(auth)
        wait_until(lambda: "crash" in [m["Subject"] for m in fetch_all(dovecot, "info@alpha.test")],
                   timeout=60, what="Dovecot storing the message", processes=[first])
        # The replies read, recording them waits on the lock.
        wait_until(_waiting_on_this_transaction, timeout=60, what="the worker recording the outcome",
                   processes=[first])
        first.kill()
    assert message.recipients.get().state == Recipient.State.QUEUED
    subjects = _delivered_by_a_new_worker(message, env, beat, celery_processes, dovecot)
    assert sorted(subjects) == ["crash", "crash", "warm-up"]
