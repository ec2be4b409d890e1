"""A message rspamd scores into "add header" goes through the MX, a worker's LMTP delivery and the shipped Sieve
script (sieve_before) into the mailbox's Junk folder of a real Dovecot, read back over IMAP; a clean one into the
inbox; a held message, released, into the inbox."""

import pytest
from django.db import connection

from accounts.models import SpamPolicy
from relay.delivery import attempts
from relay.models import QueuedMessage
from tests.relay.delivery.test_lmtp import dovecot, fetch_all, receive  # noqa: F401 -- the fixture
from relay.panel.quarantine import quarantine_release
from tests.support.rspamd import GTUBE, GTUBE_ADD_HEADER

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="Dovecot reads the mailbox tables through its pgsql driver")]


@pytest.fixture
def mx(mx_factory, cast, dns_server, rspamd):
    dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all"])
    return mx_factory()


def body(text: str) -> bytes:
    return (f"From: someone@sender.example\r\nTo: info@alpha.test\r\nSubject: Offer\r\n"
            f"Message-ID: <offer@sender.example>\r\nDate: Sun, 06 Dec 2026 07:00:00 +0000\r\n\r\n{text}\r\n").encode()


def test_add_header_score_is_filed_into_junk_and_a_clean_message_into_the_inbox(dovecot, mx):  # noqa: F811
    spam = receive(mx, data=body(GTUBE_ADD_HEADER))
    clean = receive(mx, data=body("See you on Tuesday."))
    assert attempts.deliver(spam.pk) == QueuedMessage.State.DELIVERED
    assert attempts.deliver(clean.pk) == QueuedMessage.State.DELIVERED
    [junk] = fetch_all(dovecot, "info@alpha.test", "Junk")
    assert junk["X-Spam-Flag"] == "YES" and junk["X-Spam-Score"] and "spf=pass" in junk["Authentication-Results"]
    [inbox] = fetch_all(dovecot, "info@alpha.test")
    assert inbox["X-Spam-Flag"] is None and inbox["X-Spam-Status"].startswith("No, score=")


def test_a_held_message_released_reaches_the_inbox_not_junk(dovecot, mx, cast):  # noqa: F811
    SpamPolicy.objects.create(customer=cast.a.customer, domain=cast.a.domain, quarantine=True)
    held = receive(mx, data=body(GTUBE))
    assert held.state == QueuedMessage.State.QUARANTINED
    assert attempts.deliver(held.pk) is None  # nothing delivers a held message
    quarantine_release(actor=cast.a.user, message=held)
    assert attempts.deliver(held.pk) == QueuedMessage.State.DELIVERED
    assert fetch_all(dovecot, "info@alpha.test", "Junk") == []
    [inbox] = fetch_all(dovecot, "info@alpha.test")
    assert inbox["Subject"] == "Offer" and inbox["X-Spam-Flag"] is None
