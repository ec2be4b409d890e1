"""Delivery against real peers on loopback: dnsmasq for MX answers, a recording aiosmtpd server as the MX."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services.suspension import restore, suspend
from relay.delivery import attempts
from relay.delivery.smtpclient import ConnectionCache
from relay.models import DeliveryAttempt, QueuedMessage, Recipient
from tests.support.delivery import mx, queue, routes  # noqa: F401

pytestmark = pytest.mark.django_db
State = QueuedMessage.State


def deliver(message, **kwargs) -> str:
    state = attempts.deliver(message.pk, cache=kwargs.pop("cache", ConnectionCache(idle_seconds=0)), **kwargs)
    message.refresh_from_db()
    return state


def test_delivered(cast, routes, mx):
    message = queue(cast.a, "bob@b.test")
    assert deliver(message) == State.DELIVERED
    assert message.state == State.DELIVERED and message.attempts == 1 and message.finished_at
    assert message.lease_owner == "" and message.lease_until is None
    [got] = mx.messages
    assert got.mail_from == cast.a.mailbox.address and got.rcpt_tos == ["bob@b.test"]
    assert got.tls, "STARTTLS is used when the MX offers it"
    assert got.message["Subject"] == "Test" and got.content.rstrip().endswith(b"Hello.")
    recipient = message.recipients.get()
    assert (recipient.state, recipient.last_code, recipient.remote_host) == ("delivered", 250, "mx1.b.test")
    attempt = DeliveryAttempt.objects.get(message=message)
    assert (attempt.remote_host, attempt.remote_ip, attempt.code, attempt.outcome) == (
        "mx1.b.test", "127.0.0.1", 250, "delivered")
    assert "queued" in attempt.reply
    assert not message.bounces.exists()


def test_deferred_then_delivered(cast, routes, mx, settings):
    settings.DELIVERY_RETRY_SCHEDULE = [300, 900]
    mx.replies["bob@b.test"] = ["451 4.7.1 Greylisted, try later", "250 2.1.5 OK"]
    message = queue(cast.a, "bob@b.test")
    before = timezone.now()
    assert deliver(message) == State.DEFERRED
    assert message.attempts == 1 and message.lease_until is None
    assert before + timedelta(seconds=299) < message.next_attempt_at < timezone.now() + timedelta(seconds=301)
    recipient = message.recipients.get()
    assert (recipient.state, recipient.last_code, recipient.last_status) == ("deferred", 451, "4.7.1")
    assert mx.messages == []
    assert attempts.deliver(message.pk) is None, "not due yet"
    assert deliver(message, now=message.next_attempt_at + timedelta(seconds=1)) == State.DELIVERED
    assert [m.rcpt_tos for m in mx.messages] == [["bob@b.test"]]
    assert list(message.delivery_attempts.values_list("outcome", "code")) == [("deferred", 451), ("delivered", 250)]


def test_retry_delays_grow_and_stop_at_the_last_step(settings):
    settings.DELIVERY_RETRY_SCHEDULE = [300, 600, 3600]
    assert [attempts.retry_delay(n) for n in range(1, 6)] == [300, 600, 3600, 3600, 3600]


def test_delivered_recipient_is_never_sent_again(cast, routes, mx):
    mx.replies["carol@b.test"] = ["452 4.2.2 Mailbox full", "250 2.1.5 OK"]
    message = queue(cast.a, "bob@b.test", "carol@b.test", "dave@pair.test")
    assert deliver(message) == State.DEFERRED
    assert deliver(message, now=message.next_attempt_at) == State.DELIVERED
    assert len(mx.delivered_to("bob@b.test")) == 1 and len(mx.delivered_to("dave@pair.test")) == 1
    assert [m.rcpt_tos for m in mx.delivered_to("carol@b.test")] == [["carol@b.test"]]


def test_recipients_grouped_by_domain_and_first_mx_down(cast, routes, mx):
    message = queue(cast.a, "bob@b.test", "carol@b.test", "dave@pair.test")
    assert deliver(message) == State.DELIVERED
    assert sorted(sorted(m.rcpt_tos) for m in mx.messages) == [["bob@b.test", "carol@b.test"], ["dave@pair.test"]]
    assert message.recipients.get(address="dave@pair.test").remote_host == "up.pair.test"


def test_one_connection_carries_several_messages(cast, routes, mx):
    cache = ConnectionCache(idle_seconds=30)
    for n in range(3):
        assert deliver(queue(cast.a, f"r{n}@b.test", subject=f"m{n}"), cache=cache) == State.DELIVERED
    cache.close_all()
    assert len(mx.messages) == 3 and len(mx.handler.sessions) == 1
    for n in range(2):
        deliver(queue(cast.a, f"s{n}@b.test", subject=f"n{n}"))  # no reuse: a session each
    assert len(mx.handler.sessions) == 3


def test_permanent_failure_bounces_once(cast, routes, mx):
    mx.replies["nobody@b.test"] = ["550 5.1.1 No such user here"]
    message = queue(cast.a, "bob@b.test", "nobody@b.test")
    assert deliver(message) == State.PARTIAL
    bounced = message.recipients.get(address="nobody@b.test")
    assert (bounced.state, bounced.last_code, bounced.last_status) == ("bounced", 550, "5.1.1")
    [dsn] = message.bounces.all()
    assert dsn.is_bounce and dsn.mail_from == "" and dsn.customer == cast.a.customer
    assert list(dsn.recipients.values_list("address", flat=True)) == [cast.a.mailbox.address]
    # The DSN itself goes out from the null sender to the sender's domain's MX.
    assert deliver(dsn) == State.DELIVERED
    [got] = mx.delivered_to(cast.a.mailbox.address)
    assert got.mail_from in ("", "<>") and got.message.get_content_type() == "multipart/report"
    assert attempts.deliver(message.pk) is None and message.bounces.count() == 1


def test_give_up_bounces_with_the_last_temporary_reason(cast, routes, mx, settings):
    settings.DELIVERY_GIVE_UP_SECONDS = 3600
    mx.replies["bob@b.test"] = ["451 4.3.0 Disk trouble"]
    message = queue(cast.a, "bob@b.test", created_at=timezone.now() - timedelta(minutes=50))
    assert deliver(message) == State.DEFERRED
    assert message.next_attempt_at <= message.created_at + timedelta(seconds=3600), "no retry after the give-up time"
    assert deliver(message, now=message.created_at + timedelta(seconds=3601)) == State.BOUNCED
    recipient = message.recipients.get()
    assert recipient.state == "bounced" and recipient.last_status == "4.3.0"
    assert recipient.last_reply.startswith("Gave up after 1 hours")
    [dsn] = message.bounces.all()
    assert b"Action: failed" in bytes(dsn.content) and b"Status: 4.3.0" in bytes(dsn.content)


@pytest.mark.parametrize("is_bounce", [True, False])
def test_no_bounce_for_a_message_from_the_null_sender(cast, routes, mx, is_bounce):
    mx.replies["nobody@b.test"] = ["550 5.1.1 No such user here"]
    message = queue(cast.a, "nobody@b.test", mail_from="", is_bounce=is_bounce)
    assert deliver(message) == State.BOUNCED
    assert not QueuedMessage.objects.filter(bounce_of=message).exists()
    assert QueuedMessage.objects.count() == 1


@pytest.mark.parametrize("domain, status", [("nullmx.test", "5.1.10"), ("nosuch.test", "5.1.2")])
def test_domain_that_takes_no_mail_bounces_without_a_connection(cast, routes, mx, domain, status):
    message = queue(cast.a, f"x@{domain}")
    assert deliver(message) == State.BOUNCED
    assert message.recipients.get().last_status == status
    assert mx.handler.sessions == set() and message.bounces.count() == 1


def test_dns_timeout_and_refused_connection_defer(cast, routes, mx, settings):
    settings.DNS_TIMEOUT = 0.5
    message = queue(cast.a, "x@hang.example")
    assert deliver(message) == State.DEFERRED
    assert message.recipients.get().last_status == "4.4.3"
    mx.stop()  # the MX is down now: connection refused
    message = queue(cast.a, "bob@b.test", subject="down")
    assert deliver(message) == State.DEFERRED
    recipient = message.recipients.get()
    assert recipient.state == "deferred" and recipient.last_status == "4.4.1" and "refused" in recipient.last_reply


def test_mail_from_refused_for_now_defers(cast, routes, mx):
    mx.handler.mail_replies.append("421 4.7.0 Too many connections")
    message = queue(cast.a, "bob@b.test")
    assert deliver(message) == State.DEFERRED
    assert message.recipients.get().last_code == 421


def test_claim_is_exclusive_until_the_lease_runs_out(cast, settings):
    settings.DELIVERY_LEASE_SECONDS = 60
    message = queue(cast.a, "bob@b.test")
    assert attempts.claim(message.pk, owner="w1") is not None
    assert attempts.claim(message.pk, owner="w2") is None
    later = timezone.now() + timedelta(seconds=61)
    assert attempts.claim(message.pk, owner="w2", now=later).lease_owner == "w2"
    assert message.pk in attempts.due_message_ids(now=later + timedelta(seconds=61))


@pytest.mark.django_db(transaction=True)
def test_a_lease_alone_does_not_wait_for_the_log_flush_and_relaxes_nothing_else(cast):
    """PostgreSQL: the claim's own transaction commits with synchronous_commit off (a crash loses at most a lease, and
    the message is delivered again, as when a lease runs out); the setting ends with that transaction, and a claim
    inside a caller's transaction leaves the caller's commit as it was."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    first, second = queue(cast.a, "bob@b.test"), queue(cast.a, "carol@b.test")
    with CaptureQueriesContext(connection) as queries:
        assert attempts.claim(first.pk, owner="w1").lease_owner == "w1"
    claim_sql = next(q["sql"] for q in queries if q["sql"].startswith("UPDATE"))
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert attempts.claim(second.pk, owner="w1").lease_owner == "w1"
        inside_sql = next(q["sql"] for q in queries if q["sql"].startswith("UPDATE"))
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                assert cursor.fetchone()[0] == "on"
    if connection.vendor == "postgresql":
        assert "set_config('synchronous_commit', 'off', true)" in claim_sql
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
    else:
        assert "synchronous_commit" not in claim_sql
    assert "synchronous_commit" not in inside_sql
    assert set(QueuedMessage.objects.values_list("lease_owner", flat=True)) == {"w1"}


def test_sweep_skips_fresh_messages_whose_task_is_on_its_way(cast):
    fresh = queue(cast.a, "bob@b.test")
    old = queue(cast.a, "bob@b.test", next_attempt_at=timezone.now() - timedelta(minutes=5))
    deferred = queue(cast.a, "bob@b.test", state=State.DEFERRED, attempts=1)
    later = queue(cast.a, "bob@b.test", state=State.DEFERRED, next_attempt_at=timezone.now() + timedelta(hours=1))
    ids = attempts.due_message_ids()
    assert old.pk in ids and deferred.pk in ids and fresh.pk not in ids and later.pk not in ids


def test_held_while_the_customer_is_suspended_and_sent_when_restored(cast, routes, mx):
    from relay.delivery import tasks

    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid invoice")
    message = queue(cast.a, "bob@b.test")
    assert deliver(message) == State.HELD
    assert message.state_reason == "Customer suspended: unpaid invoice" and mx.messages == []
    assert attempts.deliver(message.pk) is None, "held mail is not claimed"
    assert tasks.release_held(cast.a.customer.pk) == 0, "still suspended"
    restore(actor=cast.support, obj=cast.a.customer, reason="paid")
    assert tasks.release_held(cast.a.customer.pk) == 1
    message.refresh_from_db()
    assert message.state == State.QUEUED and message.state_reason == ""
    assert deliver(message) == State.DELIVERED and len(mx.messages) == 1


def test_recipient_states_cover_every_reply(cast, routes, mx):
    mx.replies.update({"t@b.test": ["450 4.2.0 busy"], "p@b.test": ["553 5.7.1 rejected"]})
    message = queue(cast.a, "ok@b.test", "t@b.test", "p@b.test")
    deliver(message)
    assert dict(message.recipients.values_list("address", "state")) == {
        "ok@b.test": Recipient.State.DELIVERED, "t@b.test": Recipient.State.DEFERRED,
        "p@b.test": Recipient.State.BOUNCED}
    assert message.state == State.DEFERRED and message.bounces.count() == 0, "one DSN, when the message is done"


def test_lines_starting_with_a_dot_and_bare_line_feeds_arrive_intact(cast, routes, mx):
    message = queue(cast.a, "bob@b.test", body=".hidden\r\n..two\r\nbare\nlf\r\n.\r\nend\r\n")
    assert deliver(message) == State.DELIVERED
    [got] = mx.messages
    assert got.content.split(b"\r\n\r\n", 1)[1] == b".hidden\r\n..two\r\nbare\r\nlf\r\n.\r\nend\r\n"


def test_non_ascii_address_needs_smtputf8(cast, routes, settings):
    from tests.support.mx import SmtpSink

    sink = SmtpSink()  # smtp-sink does not offer SMTPUTF8
    settings.DELIVERY_PORT = sink.port
    try:
        message = queue(cast.a, "jürgen@b.test")
        assert deliver(message) == State.BOUNCED
        assert message.recipients.get().last_status == "5.6.7"
        dsn = message.bounces.get()
        assert b"Final-Recipient: utf-8; j\\x{FC}rgen@b.test" in bytes(dsn.content)
    finally:
        sink.stop()


def test_a_worker_whose_lease_was_taken_over_stops(cast, routes, mx, monkeypatch):
    message = queue(cast.a, "bob@b.test", "carol@pair.test")
    real = attempts.deliver_domain

    def slow_first_domain(msg, domain, recipients, cache):
        outcomes = real(msg, domain, recipients, cache)
        # Meanwhile the lease ran out and another worker claimed the message.
        QueuedMessage.objects.filter(pk=msg.pk).update(lease_owner="other-worker")
        return outcomes

    monkeypatch.setattr(attempts, "deliver_domain", slow_first_domain)
    assert attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0)) is None
    message.refresh_from_db()
    assert message.lease_owner == "other-worker" and message.state == State.QUEUED
    assert [m.rcpt_tos for m in mx.messages] == [["bob@b.test"]], "the second domain is left to the new owner"


def test_broken_starttls_falls_back_to_plain_text(cast, routes, settings, relay_cert):
    import ssl

    from relay.smtpd.tls import server_context
    from tests.support.mx import start_mx

    context = server_context(*relay_cert)
    context.verify_mode = ssl.CERT_REQUIRED  # demands a client certificate: our handshake fails
    context.load_verify_locations(str(relay_cert[0]))
    broken = start_mx(tls_context=context)
    settings.DELIVERY_PORT = broken.port
    try:
        message = queue(cast.a, "bob@b.test")
        assert deliver(message) == State.DELIVERED
        [got] = broken.messages
        assert not got.tls
    finally:
        broken.stop()


def test_outcomes_are_counted_and_logged_per_recipient(cast, routes, mx, caplog):
    from relay.metrics import BOUNCES, DELIVERY_OUTCOMES

    mx.replies["nobody@b.test"] = ["550 5.1.1 No such user here"]
    before = {s: DELIVERY_OUTCOMES.labels(s)._value.get() for s in ("delivered", "bounced")}
    bounces = BOUNCES._value.get()
    with caplog.at_level("INFO", logger="relay.delivery"):
        deliver(queue(cast.a, "bob@b.test", "nobody@b.test"))
    assert DELIVERY_OUTCOMES.labels("delivered")._value.get() == before["delivered"] + 1
    assert DELIVERY_OUTCOMES.labels("bounced")._value.get() == before["bounced"] + 1
    assert BOUNCES._value.get() == bounces + 1
    lines = [r.getMessage() for r in caplog.records if r.name == "relay.delivery"]
    assert any("event=delivery" in line and "recipient=nobody@b.test" in line and "result=bounced" in line
               and "code=550" in line and f"customer={cast.a.customer.pk}" in line for line in lines)


def test_size_and_8bitmime_declared(cast, routes, mx):
    message = queue(cast.a, "bob@b.test", body="Grüße aus Köln\r\n")
    assert deliver(message) == State.DELIVERED
    [got] = mx.messages
    assert f"SIZE={message.size}" in got.mail_options and "BODY=8BITMIME" in got.mail_options
    assert "Grüße aus Köln".encode() in got.content
