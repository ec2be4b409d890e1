import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import WebhookDelivery, WebhookEndpoint
from accounts.services.suspension import suspend
from accounts.services.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db


def test_registering_shows_the_secret_once(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("webhook_add"), {"url": "https://hooks.example.net/in",
                                                    "events": ["message.bounced"]}, follow=True)
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.customer == cast.a.customer and endpoint.events == ["message.bounced"]
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret in response.content.decode()
    for page in (reverse("webhook_list"), reverse("webhook_detail", args=[endpoint.pk])):
        assert secret not in client.get(page).content.decode()


def test_a_disabled_endpoint_is_announced_and_can_be_switched_back_on(client, cast):
    endpoint = webhook_endpoint_create(actor=cast.a.user, url="https://hooks.example.net/in").endpoint
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason="Disabled after 20 failures; the last: HTTP 500")
    client.force_login(cast.a.user)
    assert "Disabled after 20 failures" in client.get(reverse("webhook_list")).content.decode()
    client.post(reverse("webhook_enable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_reason == ""
    assert "Disabled after" not in client.get(reverse("webhook_list")).content.decode()


def test_the_delivery_log_lists_events_and_redelivers(client, cast):
    endpoint = webhook_endpoint_create(actor=cast.reseller_a_admin, url="https://hooks.example.net/in").endpoint
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="failed", last_error="HTTP 500", attempts=9)
    client.force_login(cast.reseller_a_admin)
    page = client.get(reverse("webhook_detail", args=[endpoint.pk])).content.decode()
    assert "customer.suspended" in page and str(delivery.event.uuid) in page and "HTTP 500" in page
    client.post(reverse("webhook_redeliver", args=[delivery.pk]))
    delivery.refresh_from_db()
    assert delivery.state == "pending" and delivery.next_attempt_at <= timezone.now()
