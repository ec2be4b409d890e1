import pytest

from accounts.models import AuditEntry, WebhookDelivery, WebhookEndpoint
from accounts.services.suspension import suspend

pytestmark = pytest.mark.django_db


def test_the_secret_is_in_the_create_answer_only_and_the_log_and_redeliver_work(cast, keys):
    client = keys.client("customer_a")
    response = client.post("/api/v1/webhooks/", {"url": "https://hooks.example.net/in",
                                                "events": ["customer.suspended", "message.bounced"]},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_") and created["customer"] == cast.a.customer.pk
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}/").json()
    assert created["secret"] not in str(list(AuditEntry.objects.values_list("after", flat=True)))
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    # The key of a suspended customer stops working: the reseller reads its customer's endpoint.
    reseller = keys.client("reseller_a")
    [delivery] = reseller.get(f"/api/v1/webhooks/{created['id']}/deliveries/").json()["results"]
    assert delivery["event_type"] == "customer.suspended" and delivery["state"] == "pending"
    WebhookDelivery.objects.filter(pk=delivery["id"]).update(state="failed")
    response = reseller.post(f"/api/v1/webhooks/{created['id']}/redeliver/", {"delivery": delivery["id"]},
                             content_type="application/json")
    assert response.status_code == 202 and response.json()["state"] == "pending"


def test_bad_urls_and_event_types_are_field_errors(cast, keys):
    client = keys.client("customer_a")
    for body, field in (({"url": "ftp://x.test/"}, "url"), ({"url": "https://u:p@x.test/"}, "url"),
                        ({"url": "https://x.test/", "events": ["nope"]}, "events")):
        response = client.post("/api/v1/webhooks/", body, content_type="application/json")
        assert response.status_code == 400 and field in response.json()["error"]["fields"], response.content
    assert not WebhookEndpoint.objects.exists()


def test_a_resellers_own_endpoint_and_supports_must_name_an_owner(cast, keys):
    response = keys.client("reseller_a").post("/api/v1/webhooks/", {"url": "https://billing.example.net/hm"},
                                              content_type="application/json")
    assert response.status_code == 201 and response.json()["reseller"] == cast.reseller_a.pk
    response = keys.client("support").post("/api/v1/webhooks/", {"url": "https://x.example.net/"},
                                           content_type="application/json")
    assert response.status_code == 400
    response = keys.client("customer_a").post("/api/v1/webhooks/", {"url": "https://x.example.net/",
                                                                    "reseller": cast.reseller_a.pk},
                                              content_type="application/json")
    assert response.status_code == 404, "a customer sees no reseller"
