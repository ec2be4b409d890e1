"""Spam checking at the MX's end of DATA with a real rspamd (tests/support/rspamd.py): its action decides the
reply, the marking and the quarantine; the customers' lists and thresholds come first; rspamd down is the
configured fallback."""

import pytest

from accounts.models import SenderRule, SpamPolicy
from relay.models import QueuedMessage
from tests.support.inbound import mta_client
from tests.support.rspamd import GTUBE, GTUBE_ADD_HEADER, running_rspamd
from tests.support.smtp import send

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "someone@sender.example"


def message(body: str = "Hello there, see you on Tuesday.", sender: str = SENDER) -> bytes:
    return (f"From: {sender}\r\nTo: info@alpha.test\r\nSubject: Lunch\r\nMessage-ID: <m1@sender.example>\r\n"
            f"Date: Sun, 06 Dec 2026 07:00:00 +0000\r\n\r\n{body}\r\n").encode()


@pytest.fixture
def mx(mx_factory, cast, dns_server):
    dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all"])
    return mx_factory()


def deliver(mx, data: bytes, sender: str = SENDER):
    with mta_client(mx.port) as client:
        return send(client, sender=sender, recipients=["info@alpha.test"], data=data)[-1]


def test_gtube_is_refused_with_550_and_nothing_is_stored(mx, rspamd):
    code, text = deliver(mx, message(GTUBE))
    assert (code, text.decode()) == (550, "5.7.1 Message rejected as spam")
    assert not QueuedMessage.objects.exists()


def test_add_header_is_stored_marked_with_score_and_symbols(mx, rspamd):
    code, _ = deliver(mx, message(GTUBE_ADD_HEADER))
    assert code == 250
    stored = QueuedMessage.objects.get()
    content = bytes(stored.content)
    assert b"X-Spam-Flag: YES\r\n" in content and b"X-Spam-Status: Yes, score=" in content
    assert stored.spam_action == "add header" and stored.spam_score >= 6 and "GTUBE" in stored.spam_symbols
    assert stored.auth_results.startswith("Authentication-Results:") and "spf=pass" in stored.auth_results
    assert stored.state == QueuedMessage.State.QUEUED


def test_a_clean_message_goes_to_the_inbox_unmarked(mx, rspamd):
    forged = message().replace(b"Subject:", b"X-Spam-Flag: YES\r\nX-Spam-Status: No, forged\r\nSubject:")
    assert deliver(mx, forged)[0] == 250
    stored = QueuedMessage.objects.get()
    content = bytes(stored.content)
    # The sender's own X-Spam fields are removed: only our verdict is in the message.
    assert b"X-Spam-Flag" not in content and b"forged" not in content
    assert b"X-Spam-Status: No, score=" in content
    assert stored.spam_action == "no action"
    # rspamd was given the envelope: it compared the From: and To: fields with it.
    assert {"FROM_EQ_ENVFROM", "TO_MATCH_ENVRCPT_ALL"} <= set(stored.spam_symbols)


def test_a_domain_holding_instead_of_refusing_quarantines_the_message(mx, rspamd, cast):
    SpamPolicy.objects.create(customer=cast.a.customer, domain=cast.a.domain, quarantine=True)
    code, text = deliver(mx, message(GTUBE))
    assert code == 250, text
    held = QueuedMessage.objects.get()
    assert held.state == QueuedMessage.State.QUARANTINED and held.spam_action == "reject"
    assert b"X-Spam-Flag: YES" in bytes(held.content)


def test_a_blocked_sender_is_refused_without_asking_rspamd(mx, cast, settings):
    settings.RSPAMD_URL = "http://127.0.0.1:9"  # nothing listens: a scan would be "not scanned", not refused
    SenderRule.objects.create(customer=cast.a.customer, kind="block", value="sender.example")
    code, text = deliver(mx, message())
    assert (code, text.decode()) == (550, "5.7.1 Message rejected: the sender is blocked by the recipient")


def test_an_allowed_sender_is_never_marked_or_refused(mx, rspamd, cast):
    SenderRule.objects.create(customer=cast.a.customer, kind="allow", value=SENDER)
    SenderRule.objects.create(customer=cast.a.customer, kind="block", value="sender.example")  # the address wins
    assert deliver(mx, message(GTUBE))[0] == 250
    stored = QueuedMessage.objects.get()
    assert stored.spam_action == "allow list" and b"X-Spam-Flag" not in bytes(stored.content)


def test_a_customer_threshold_marks_below_rspamds_own(mx, rspamd, cast):
    SpamPolicy.objects.create(customer=cast.a.customer, mark_score=2.0, reject_score=5.0)
    code, text = deliver(mx, message(GTUBE_ADD_HEADER))  # scores 6: over this customer's reject score
    assert (code, text.decode()) == (550, "5.7.1 Message rejected as spam")


def test_a_domain_threshold_wins_over_its_customers(mx, rspamd, cast):
    SpamPolicy.objects.create(customer=cast.a.customer, reject_score=5.0)
    SpamPolicy.objects.create(customer=cast.a.customer, domain=cast.a.domain, reject_score=40.0, mark_score=20.0)
    assert deliver(mx, message(GTUBE))[0] == 250  # 15 < 40 and < 20: inbox
    assert b"X-Spam-Flag" not in bytes(QueuedMessage.objects.get().content)


@pytest.mark.parametrize("fail, code", [("accept", 250), ("tempfail", 451)])
def test_rspamd_stopped_is_the_configured_fallback(mx, settings, fail, code):
    with running_rspamd() as server:
        settings.RSPAMD_URL, settings.RSPAMD_FAIL = server.url, fail
        assert deliver(mx, message(GTUBE))[0] == 550  # it was running
    reply = deliver(mx, message(GTUBE))
    assert reply[0] == code, reply
    if fail == "accept":
        stored = QueuedMessage.objects.get()
        assert stored.spam_action == "not scanned"
        assert b"X-Spam-Status: Unknown, not scanned" in bytes(stored.content)
    else:
        assert reply[1].decode() == "4.7.1 Spam filter unavailable, please try again later"
        assert not QueuedMessage.objects.exists()
