"""The beat task that purges the webhook delivery log after WEBHOOK_RETENTION_DAYS (as the message log's purge),
one-time sign-in links nothing can use any more, and Idempotency-Keys past API_IDEMPOTENCY_HOURS."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import tasks
from accounts.models import ApiIdempotencyKey, LoginLink, WebhookDelivery, WebhookEvent
from accounts.services.api_keys import api_key_create
from accounts.services.login_links import login_link_create
from accounts.services.webhooks import event_record, webhook_endpoint_create
from hostingmail.celery import app

pytestmark = pytest.mark.django_db


def _event(customer, *, days_old: int, state: str) -> WebhookEvent:
    event = event_record(type="customer.restored", customer_id=customer.pk, payload={"reason": state},
                         now=timezone.now() - timedelta(days=days_old))
    event.deliveries.update(state=state)
    return event


def test_old_delivered_and_failed_deliveries_and_their_events_go_pending_and_recent_ones_stay(cast, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    webhook_endpoint_create(actor=None, customer=cast.a.customer, url="https://hooks.alpha.test/in")
    old_delivered = _event(cast.a.customer, days_old=31, state=WebhookDelivery.State.DELIVERED)
    old_failed = _event(cast.a.customer, days_old=40, state=WebhookDelivery.State.FAILED)
    old_pending = _event(cast.a.customer, days_old=31, state=WebhookDelivery.State.PENDING)
    recent = _event(cast.a.customer, days_old=29, state=WebhookDelivery.State.DELIVERED)

    result = tasks.purge_old_webhooks()

    assert result["webhook_deliveries"] == 2 and result["webhook_events"] == 2
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {old_pending.pk, recent.pk}
    assert not WebhookEvent.objects.filter(pk__in=[old_delivered.pk, old_failed.pk]).exists()
    assert WebhookDelivery.objects.count() == 2
    settings.WEBHOOK_RETENTION_DAYS = 60
    assert tasks.purge_old_webhooks()["webhook_deliveries"] == 0


def test_login_links_expired_a_day_ago_are_purged(cast):
    stale = login_link_create(actor=None, user=cast.a.user).link
    fresh = login_link_create(actor=None, user=cast.b.user).link
    LoginLink.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(days=2))
    assert tasks.purge_old_webhooks()["login_links"] == 1
    assert list(LoginLink.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_idempotency_keys_past_their_hours_are_purged(cast, settings):
    settings.API_IDEMPOTENCY_HOURS = 24
    key = api_key_create(actor=None, user=cast.a.user, name="billing").api_key
    old = ApiIdempotencyKey.objects.create(api_key=key, key="old", fingerprint="x", status_code=201,
                                           created_at=timezone.now() - timedelta(hours=25))
    recent = ApiIdempotencyKey.objects.create(api_key=key, key="recent", fingerprint="x", status_code=201)
    assert tasks.purge_old_webhooks()["idempotency_keys"] == 1
    assert list(ApiIdempotencyKey.objects.values_list("pk", flat=True)) == [recent.pk] and old.pk != recent.pk


def test_beat_runs_the_purge():
    assert any(entry["task"] == "accounts.tasks.purge_old_webhooks" for entry in app.conf.beat_schedule.values())
