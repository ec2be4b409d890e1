"""A Celery worker killed with SIGKILL in the middle of an LMTP delivery (the message sent, the reply not yet
read): after its lease runs out another worker delivers it again. LMTP has no transaction id, so the LMTP
server may hold the first copy too — at least once, never zero, and never more than once per killed attempt."""

import asyncio
import threading
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from django.utils import timezone

from relay.inbound.accept import InboundMessage, accept_inbound
from relay.inbound.rules import Accepted, Destination
from relay.models import QueuedMessage, Recipient
from tests.peers import free_port
from tests.support.workers import broker_env, celery_processes, wait_until  # noqa: F401


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
