"""relay.inbound.spam's decision from rspamd's answer and the recipients' policies, without a server: every rspamd
action, the strictest verdict of several recipients, support's bounds on a customer's thresholds."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.models import SenderRule, SpamPolicy
from relay.inbound import spam
from relay.inbound.rules import Accepted, Destination
from relay.inbound.spam import Scan, Thresholds, decide, load_policies, sender_keys

PLAIN = {"a@alpha.test": Thresholds()}


def _run(coroutine):
    # On a thread of its own: a browser test earlier in the session may have left an event loop on this one.
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


@pytest.mark.parametrize("action, outcome, reply", [
    ("reject", spam.REJECT, "550 5.7.1 Message rejected as spam"),
    ("soft reject", spam.TEMPFAIL, "451 4.7.1 Message deferred by the spam filter, please try again later"),
    ("greylist", spam.TEMPFAIL, "451 4.7.1 Message deferred by the spam filter, please try again later"),
    ("add header", spam.JUNK, ""),
    ("rewrite subject", spam.JUNK, ""),
    ("no action", spam.INBOX, ""),
])
def test_each_rspamd_action(action, outcome, reply):
    verdict = decide(Scan(action=action, score=7.0, symbols={"X": 7.0}), PLAIN)
    assert (verdict.outcome, verdict.reply) == (outcome, reply)
    assert ("X-Spam-Flag: YES\r\n" in verdict.headers) == (outcome == spam.JUNK)


def test_marked_message_carries_score_and_status():
    verdict = decide(Scan(action="add header", score=6.5), PLAIN)
    assert verdict.headers == ("X-Spam-Flag: YES\r\nX-Spam-Score: 6.50\r\n"
                               "X-Spam-Status: Yes, score=6.50 action=add header\r\n")


def test_strictest_recipient_wins():
    policies = {"a@alpha.test": Thresholds(reject=5.0), "b@bravo.test": Thresholds(quarantine=True)}
    assert decide(Scan(action="add header", score=6.0), policies).outcome == spam.REJECT
    policies = {"a@alpha.test": Thresholds(rule="allow"), "b@bravo.test": Thresholds()}
    assert decide(Scan(action="add header", score=6.0), policies).outcome == spam.JUNK


def test_quarantine_replaces_reject_only():
    held = Thresholds(quarantine=True)
    assert decide(Scan(action="reject", score=20.0), {"a@alpha.test": held}).outcome == spam.QUARANTINE
    assert decide(Scan(action="add header", score=6.0), {"a@alpha.test": held}).outcome == spam.JUNK


@pytest.mark.parametrize("fail, outcome", [("accept", spam.INBOX), ("tempfail", spam.TEMPFAIL)])
def test_not_scanned_follows_the_setting(settings, fail, outcome):
    settings.RSPAMD_FAIL = fail
    verdict = decide(Scan(action=None, error="TimeoutError"), PLAIN)
    assert (verdict.outcome, verdict.action) == (outcome, spam.NOT_SCANNED)
    if fail == "accept":
        assert verdict.headers == "X-Spam-Status: Unknown, not scanned (TimeoutError)\r\n"


def test_rspamd_slower_than_the_timeout_is_not_scanned(settings):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    settings.RSPAMD_URL, settings.RSPAMD_TIMEOUT = f"http://127.0.0.1:{listener.getsockname()[1]}", 0.3
    try:
        result = spam.scan(b"Subject: x\r\n\r\nx\r\n", mail_from="", recipients=["a@alpha.test"],
                           client_ip="192.0.2.1", helo="h.example")
    finally:
        thread.join(2)
        for conn, _ in accepted:
            conn.close()
        listener.close()
    assert result.action is None and result.error


def test_sender_keys_are_envelope_and_from_addresses_and_domains():
    content = b"From: Boss <Boss@Corp.example>\r\nSubject: x\r\n\r\nbody\r\n"
    assert sender_keys("bounce@mailer.example", content) == [
        "bounce@mailer.example", "mailer.example", "boss@corp.example", "corp.example"]


@pytest.mark.django_db
def test_thresholds_are_held_within_supports_bounds(cast, settings):
    settings.SPAM_SCORE_MIN, settings.SPAM_SCORE_MAX = 2.0, 50.0
    SpamPolicy.objects.create(customer=cast.a.customer, mark_score=1.0, reject_score=80.0, min_score=3.0)
    accepted = Accepted(address="info@alpha.test", external=(),
                        mailboxes=(Destination(cast.a.mailbox.pk, "info@alpha.test", cast.a.customer.pk),))
    assert load_policies([accepted], ["x@spam.example"])["info@alpha.test"] == Thresholds(mark=3.0, reject=50.0)


@pytest.mark.django_db
def test_an_address_rule_beats_its_domains(cast):
    SenderRule.objects.create(customer=cast.a.customer, kind="block", value="corp.example")
    SenderRule.objects.create(customer=cast.a.customer, kind="allow", value="boss@corp.example")
    accepted = Accepted(address="info@alpha.test", external=(),
                        mailboxes=(Destination(cast.a.mailbox.pk, "info@alpha.test", cast.a.customer.pk),))
    assert load_policies([accepted], ["boss@corp.example", "corp.example"])["info@alpha.test"].rule == "allow"
    assert load_policies([accepted], ["other@corp.example", "corp.example"])["info@alpha.test"].rule == "block"
    # Another customer's rules are not this one's.
    other = Accepted(address="info@bravo.test", external=(),
                     mailboxes=(Destination(cast.b.mailbox.pk, "info@bravo.test", cast.b.customer.pk),))
    assert load_policies([other], ["other@corp.example", "corp.example"])["info@bravo.test"].rule == ""


def test_a_database_failure_reading_the_policies_is_a_temporary_failure(settings):
    from django.db import OperationalError

    settings.RSPAMD_URL = "http://127.0.0.1:9"

    async def failing_db(func, *args):
        raise OperationalError("the database is restarting")

    verdict = _run(spam.check_message(failing_db, b"Subject: x\r\n\r\nx\r\n", mail_from="a@b.example",
                                             recipients=[], client_ip="192.0.2.1", helo="h.example"))
    assert (verdict.outcome, verdict.reply) == (spam.TEMPFAIL, "451 4.3.0 Temporary lookup failure, please try again later")


def test_spam_checking_off_asks_nothing(settings):
    settings.RSPAMD_URL = ""

    async def no_db(func, *args):
        raise AssertionError("the database was asked")

    assert _run(spam.check_message(no_db, b"Subject: x\r\n\r\nx\r\n", mail_from="", recipients=[],
                                          client_ip="192.0.2.1", helo="h.example")) is None


@pytest.mark.django_db
def test_at_the_same_precision_block_wins(cast):
    SenderRule.objects.create(customer=cast.a.customer, kind="allow", value="bounces@mailer.example")
    SenderRule.objects.create(customer=cast.a.customer, kind="block", value="ceo@forged.example")
    accepted = Accepted(address="info@alpha.test", external=(),
                        mailboxes=(Destination(cast.a.mailbox.pk, "info@alpha.test", cast.a.customer.pk),))
    senders = sender_keys("bounces@mailer.example", b"From: ceo@forged.example\r\n\r\nx\r\n")
    assert load_policies([accepted], senders)["info@alpha.test"].rule == "block"
