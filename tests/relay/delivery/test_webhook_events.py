"""Recipients' outcomes become webhook events in the commit that records them, with the DSN's status and
diagnostic; a sending limit reached at the relay is one event per limit and period, however often it refuses."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Mailbox, WebhookEvent
from accounts.services.webhooks import webhook_endpoint_create
from relay.delivery import attempts
from relay.delivery.smtpclient import ConnectionCache
from relay.submission import accept
from tests.relay.submission.test_group_commit import principal, submission  # noqa: F401
from tests.support.delivery import mx, queue, routes  # noqa: F401

pytestmark = pytest.mark.django_db


def deliver(message, **kwargs):
    return attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0), **kwargs)


def events(type_=None):
    qs = WebhookEvent.objects.order_by("id")
    return list(qs.filter(type=type_) if type_ else qs)


def test_delivered_deferred_and_bounced_recipients_are_events(cast, routes, mx, settings):
    webhook_endpoint_create(actor=cast.a.user, url="https://hooks.example.net/in")
    settings.DELIVERY_RETRY_SCHEDULE = [300]
    mx.replies["nobody@b.test"] = ["550 5.1.1 No such user here"]
    mx.replies["grey@b.test"] = ["451 4.7.1 Greylisted, try later", "250 2.1.5 OK"]
    message = queue(cast.a, "bob@b.test", "nobody@b.test", "grey@b.test")
    deliver(message)
    by_recipient = {e.payload["recipient"]: e for e in events()}
    assert {r: e.type for r, e in by_recipient.items()} == {
        "bob@b.test": "message.delivered", "nobody@b.test": "message.bounced", "grey@b.test": "message.deferred"}
    bounced = by_recipient["nobody@b.test"].payload
    assert bounced["status"] == "5.1.1" and bounced["smtp_code"] == 550
    assert bounced["diagnostic_code"].startswith("smtp; 550") and "No such user" in bounced["diagnostic_code"]
    assert bounced["message"]["queue_id"] == message.queue_id
    assert all(e.customer_id == cast.a.customer.pk for e in events())
    # The DSN the bounce sent is ours, not the customer's mail: delivering it is no event.
    message.refresh_from_db()
    deliver(message, now=message.next_attempt_at + timedelta(seconds=1))
    [dsn] = message.bounces.all()
    deliver(dsn)
    assert [e.type for e in events()][3:] == ["message.delivered"]


def test_a_give_up_is_a_bounce_event_with_the_last_temporary_status(cast, routes, mx, settings):
    webhook_endpoint_create(actor=cast.a.user, url="https://hooks.example.net/in", events=["message.bounced"])
    settings.DELIVERY_GIVE_UP_SECONDS = 3600
    mx.replies["bob@b.test"] = ["451 4.3.0 Disk trouble"]
    message = queue(cast.a, "bob@b.test", created_at=timezone.now() - timedelta(minutes=50))
    deliver(message)
    assert events() == [], "a deferral is not what this endpoint asked for"
    deliver(message, now=message.created_at + timedelta(seconds=3601))
    [event] = events()
    assert event.type == "message.bounced" and event.payload["status"] == "4.3.0"
    assert "Gave up" in event.payload["diagnostic_code"]


def test_no_endpoint_no_event_rows(cast, routes, mx):
    deliver(queue(cast.a, "bob@b.test"))
    assert events() == []


def test_a_sending_limit_reached_is_one_event_per_limit_and_period(cast, principal):  # noqa: F811
    webhook_endpoint_create(actor=cast.reseller_a_admin, url="https://hooks.example.net/in")
    accept._limits_reported.clear()
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(send_per_hour=1)
    results = accept.accept_messages([submission(principal, ["a@example.org"]),
                                      submission(principal, ["b@example.org"]),
                                      submission(principal, ["c@example.org"])])
    assert [type(r).__name__ for r in results] == ["QueuedMessage", "QuotaExceeded", "QuotaExceeded"]
    accept.accept_messages([submission(principal, ["d@example.org"])])
    [event] = events("sending.limit_reached")
    assert event.customer_id == cast.a.customer.pk
    assert (event.payload["level"], event.payload["window"], event.payload["limit"]) == ("mailbox", "hour", 1)
    # Another relay process (nothing remembered in memory) still writes no second event.
    accept._limits_reported.clear()
    accept.accept_messages([submission(principal, ["e@example.org"])])
    assert len(events("sending.limit_reached")) == 1
