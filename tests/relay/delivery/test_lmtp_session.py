"""A worker thread keeps its LMTP session for its next delivery (LMTP_REUSE_SECONDS), and a kept session the
server closed meanwhile costs nothing but a new one."""

import pytest
from aiosmtpd.lmtp import LMTP

from relay.delivery import lmtp
from relay.inbound.accept import accept_inbound
from tests.peers import free_port
from tests.relay.delivery.test_lmtp_crash import LmtpController, inbound

pytestmark = pytest.mark.django_db


class Sessions:
    def __init__(self):
        self.sessions: list[int] = []
        self.messages = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.sessions.append(id(session))
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        return "250 2.0.0 Saved"


@pytest.fixture
def server(settings):
    handler = Sessions()
    controller = LmtpController(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    settings.LMTP_URL = f"127.0.0.1:{controller.port}"
    running = [controller]
    yield handler, running
    lmtp._kept.session = None
    running[-1].stop()


def deliver(cast, subject: str) -> list[int]:
    [message] = accept_inbound([inbound(cast.a, subject)])
    return [code for _, code, _ in lmtp.deliver_local(message, list(message.recipients.all()))]


def test_one_session_carries_a_threads_consecutive_deliveries(cast, server, settings):
    handler, _ = server
    settings.LMTP_REUSE_SECONDS = 30
    assert deliver(cast, "one") == [250] and deliver(cast, "two") == [250] and deliver(cast, "three") == [250]
    assert handler.messages == 3 and len(set(handler.sessions)) == 1


def test_without_reuse_each_delivery_has_its_own_session(cast, server, settings):
    handler, _ = server
    settings.LMTP_REUSE_SECONDS = 0
    assert deliver(cast, "one") == [250] and deliver(cast, "two") == [250]
    assert handler.messages == 2 and len(set(handler.sessions)) == 2


def test_a_kept_session_the_server_closed_is_replaced_without_a_failure(cast, server, settings):
    handler, running = server
    settings.LMTP_REUSE_SECONDS = 30
    assert deliver(cast, "one") == [250]
    running[0].stop()  # Dovecot restarted, or closed an idle session
    running.append(LmtpController(handler, hostname="127.0.0.1", port=running[0].port, ready_timeout=10))
    running[-1].start()
    assert deliver(cast, "two") == [250]
    assert handler.messages == 2 and len(set(handler.sessions)) == 2
