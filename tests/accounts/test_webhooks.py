"""Webhooks from the outbox to a real HTTP receiver on loopback: signed, retried until the receiver is back, sent
exactly once per event and endpoint, written only with the change that causes them, never to private addresses
unless allowed, and endpoints disabled after sustained failure."""

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts import webhook_sender
from accounts.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from accounts.services.domains import domain_record_dns
from accounts.services.suspension import restore, suspend
from accounts.services.webhooks import webhook_endpoint_create, webhook_redeliver
from hostingmail.celery import app
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def send_due(now=None) -> dict:
    return webhook_sender.deliver_many(webhook_sender.due_ids(now=now), now=now)


def test_a_delivery_is_signed_and_verifies_at_the_receiver(cast, receiver):
    new = webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    assert new.secret.startswith("whsec_") and new.secret not in new.endpoint.secret_encrypted
    suspend(actor=None, obj=cast.a.customer, reason="unpaid invoice")
    assert list(send_due().values()) == ["delivered"]
    [got] = receiver.requests
    assert got.path == "/hooks/in?src=hm" and got.headers["Content-Type"] == "application/json"
    body = json.loads(got.body)
    event = WebhookEvent.objects.get()
    assert body["id"] == got.headers["X-Hostingmail-Event-Id"] == str(event.uuid)
    assert body["type"] == "customer.suspended" and body["data"]["reason"] == "unpaid invoice"
    assert body["data"]["customer"]["id"] == cast.a.customer.pk
    signature = got.headers["X-Hostingmail-Signature"]
    assert webhook_sender.verify(new.secret, got.body, signature)
    assert not webhook_sender.verify(new.secret, got.body + b" ", signature), "the body is signed"
    assert not webhook_sender.verify("whsec_other", got.body, signature), "under the endpoint's secret"
    assert not webhook_sender.verify(new.secret, got.body, signature, now=time.time() + 301), "a replay is stale"


def test_receiver_down_for_a_while_gets_each_event_once_when_back(cast, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [60, 300]
    first, second = Receiver().start(), Receiver().start()
    for server in (first, second):
        webhook_endpoint_create(actor=cast.a.user, url=server.url)
    first.stop()  # down: connection refused
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    restore(actor=None, obj=cast.a.customer, reason="paid")
    now = timezone.now()
    states = send_due(now)
    assert sorted(states.values()) == ["delivered", "delivered", "pending", "pending"]
    assert len(second.requests) == 2
    down = WebhookDelivery.objects.filter(endpoint__url=first.url)
    assert all(d.attempts == 1 and d.last_error and d.next_attempt_at >= now + timedelta(seconds=59) for d in down)
    assert send_due(now) == {}, "not due again before the delay"
    first.start()  # back, on the same port
    try:
        later = now + timedelta(seconds=61)
        assert sorted(send_due(later).values()) == ["delivered", "delivered"]
        assert send_due(later + timedelta(hours=1)) == {}
        events = sorted(str(u) for u in WebhookEvent.objects.values_list("uuid", flat=True))
        assert sorted(first.event_ids()) == events and sorted(second.event_ids()) == events
        assert all(d.state == "delivered" and d.attempts == 2 for d in down.all())
    finally:
        first.stop()
        second.stop()


def test_a_claimed_delivery_is_not_sent_by_another_worker(cast, receiver):
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    [delivery_id] = webhook_sender.due_ids()
    now = timezone.now()
    assert webhook_sender._claim(delivery_id, now) is not None
    assert webhook_sender._claim(delivery_id, now) is None
    assert webhook_sender.deliver(delivery_id, now=now) is None and receiver.requests == []
    # A worker killed holding the claim: once it expires, another sends it.
    assert webhook_sender.deliver(delivery_id, now=now + timedelta(minutes=5)) == "delivered"
    assert len(receiver.requests) == 1


def test_a_claim_lasts_webhook_lease_seconds(cast, receiver, settings):
    settings.WEBHOOK_LEASE_SECONDS = 120
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    [delivery_id] = webhook_sender.due_ids()
    now = timezone.now()
    assert webhook_sender._claim(delivery_id, now) is not None
    assert webhook_sender._claim(delivery_id, now + timedelta(seconds=119)) is None
    assert webhook_sender._claim(delivery_id, now + timedelta(seconds=121)) is not None


def test_a_rolled_back_change_writes_no_event(cast, receiver):
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        suspend(actor=None, obj=cast.a.customer, reason="unpaid")
        assert WebhookEvent.objects.count() == 1, "written in the change's own transaction"
        raise RuntimeError("the request failed after the change")
    assert WebhookEvent.objects.count() == 0 and WebhookDelivery.objects.count() == 0
    assert send_due() == {} and receiver.requests == []


def test_an_event_is_sent_even_when_the_broker_was_down(cast, receiver, monkeypatch):
    from accounts.services import workers

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")
    monkeypatch.setattr(workers.current_app, "send_task", broker_down)
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    with django_capture_on_commit():
        suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    assert WebhookDelivery.objects.get().state == "pending"
    # The beat sweep is scheduled and finds it in the table.
    assert any(e["task"] == "accounts.tasks.sweep_webhooks" for e in app.conf.beat_schedule.values())
    assert list(send_due().values()) == ["delivered"]


def django_capture_on_commit():
    from django.test import TestCase
    return TestCase.captureOnCommitCallbacks(execute=True)


def test_private_and_loopback_receivers_are_refused_without_the_setting(cast, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    webhook_endpoint_create(actor=cast.a.user, url=f"http://localhost:{receiver.port}/")
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    assert list(send_due().values()) == ["pending", "pending"]
    assert receiver.requests == []
    assert all(d.last_error.startswith("refused:") for d in WebhookDelivery.objects.all())
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert list(send_due(timezone.now() + timedelta(hours=1)).values()) == ["delivered", "delivered"]


def test_an_endpoint_is_disabled_after_sustained_failure_and_says_why(cast, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 600
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    receiver.status = 500
    new = webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    now = timezone.now()
    for minutes in (0, 2, 4, 6):  # four failures in a row, but within minutes: one outage, not yet sustained
        send_due(now + timedelta(minutes=minutes))
    endpoint = WebhookEndpoint.objects.get(pk=new.endpoint.pk)
    assert endpoint.is_active and endpoint.consecutive_failures == 4
    send_due(now + timedelta(minutes=11))
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "HTTP 500" in endpoint.disabled_reason and endpoint.disabled_at
    assert len(receiver.requests) == 5
    assert send_due(now + timedelta(hours=2)) == {}, "a disabled endpoint gets nothing"


def test_a_success_resets_the_failure_count(cast, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    receiver.status = 503
    new = webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    send_due()
    receiver.status = 204
    send_due(timezone.now() + timedelta(minutes=2))
    endpoint = WebhookEndpoint.objects.get(pk=new.endpoint.pk)
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None


def test_retries_stop_a_day_after_the_event(cast, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [3600]
    receiver.status = 500
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    now = timezone.now()
    assert list(send_due(now).values()) == ["pending"]
    assert list(send_due(now + timedelta(hours=23)).values()) == ["pending"]
    assert list(send_due(now + timedelta(hours=24, seconds=1)).values()) == ["failed"]
    assert send_due(now + timedelta(days=3)) == {}


def test_redeliver_sends_the_same_event_again(cast, receiver):
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    send_due()
    webhook_redeliver(actor=cast.a.user, delivery=WebhookDelivery.objects.get())
    send_due()
    first, again = receiver.event_ids()
    assert first == again, "the receiver dedupes by the event id"


def test_endpoints_hear_their_own_tenants_events_of_the_types_they_chose(cast, receiver):
    webhook_endpoint_create(actor=cast.reseller_a_admin, url=receiver.url + "&who=reseller-a")
    webhook_endpoint_create(actor=cast.reseller_b_admin, url=receiver.url + "&who=reseller-b")
    webhook_endpoint_create(actor=cast.b.user, url=receiver.url + "&who=customer-b")
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url + "&who=customer-a-bounces",
                            events=["message.bounced"])
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    send_due()
    assert [r.path.rpartition("=")[2] for r in receiver.requests] == ["reseller-a"]


def test_dns_status_change_is_an_event_and_an_unchanged_check_is_not(cast, receiver):
    webhook_endpoint_create(actor=cast.a.user, url=receiver.url, events=["domain.dns_changed"])
    good = {"mx": {"status": "ok"}, "spf": {"status": "ok"}}
    domain_record_dns(actor=None, domain=cast.a.domain, dns_status=good)
    domain_record_dns(actor=None, domain=cast.a.domain, dns_status=good)
    domain_record_dns(actor=None, domain=cast.a.domain, dns_status={**good, "spf": {"status": "missing"}})
    events = list(WebhookEvent.objects.order_by("id").values_list("payload", flat=True))
    assert len(events) == 2
    assert events[1]["domain"]["name"] == cast.a.domain.name and events[1]["after"]["spf"] == "missing"


def test_the_readme_receiver_example_verifies_a_real_delivery(cast, receiver):
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [code] = [block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify_webhook" in block]
    namespace = {}
    exec(code, namespace)
    new = webhook_endpoint_create(actor=cast.a.user, url=receiver.url)
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    send_due()
    [got] = receiver.requests
    assert namespace["verify_webhook"](new.secret, got.body, got.headers["X-Hostingmail-Signature"])
    assert not namespace["verify_webhook"](new.secret, got.body.replace(b"unpaid", b"paid!!"),
                                           got.headers["X-Hostingmail-Signature"])


def test_events_nobody_listens_to_cost_one_query_and_no_savepoint(cast, receiver):
    """What a delivery worker pays per batch of outcomes for customers without webhooks."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services.webhooks import Event, events_record

    webhook_endpoint_create(actor=cast.reseller_b_admin, url=receiver.url + "&who=reseller-b")
    events = [Event(type="message.delivered", customer_id=tenant.customer.pk, payload={"n": n})
              for n, tenant in enumerate([cast.a, cast.direct])]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert events_record(events) == []
    assert len(queries) == 1 and not WebhookEvent.objects.exists()
    [written] = events_record([*events, Event(type="message.delivered", customer_id=cast.b.customer.pk,
                                              payload={"n": 2})])
    assert written.customer_id == cast.b.customer.pk and WebhookDelivery.objects.get().event == written
