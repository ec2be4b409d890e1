"""Webhook events for suspension and restore: a customer suspended or restored from the reseller's panel, the
support console, the API or the command line makes exactly one event, written in the same transaction as the
change; domains, mailboxes and SMTP credentials have their own suspended/restored events."""

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts.models import WebhookDelivery, WebhookEvent
from accounts.services.credentials import credential_create
from accounts.services.suspension import suspend
from accounts.services.webhooks import webhook_endpoint_create
from tests.support.factories import PASSWORD
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(cast):
    return webhook_endpoint_create(actor=None, customer=cast.a.customer, url="https://hooks.alpha.test/in").endpoint


def _events(cast) -> list[tuple[str, str]]:
    return [(e.type, e.payload["reason"]) for e in WebhookEvent.objects.filter(customer=cast.a.customer)
            .order_by("created_at", "id")]


def _reseller_panel(cast):
    client = Client()
    assert client.login(username=cast.reseller_a_admin.username, password=PASSWORD)
    pk = cast.a.customer.pk
    return (lambda: client.post(reverse("reseller:customer_suspend", args=[pk]), {"reason": "panel"}),
            lambda: client.post(reverse("reseller:customer_restore", args=[pk]), {"reason": "panel"}))


def _support_console(cast):
    client = Client()
    sign_in_verified(client, cast.support)
    url = reverse("support:customer_status", args=[cast.a.customer.pk])
    return (lambda: client.post(url, {"reason": "console"}), lambda: client.post(url, {"reason": "console"}))


def _api(cast, keys):
    client, pk = keys.client("reseller_a"), cast.a.customer.pk
    return (lambda: client.post(f"/api/v1/customers/{pk}/suspend/", {"reason": "api"},
                                content_type="application/json"),
            lambda: client.post(f"/api/v1/customers/{pk}/restore/", {"reason": "api"},
                                content_type="application/json"))


def _cli(cast):
    return (lambda: call_command("customer_suspend", "Alpha", "--reason", "cli"),
            lambda: call_command("customer_restore", "Alpha", "--reason", "cli"))


@pytest.mark.parametrize("path", ["panel", "console", "api", "cli"])
def test_each_path_makes_exactly_one_event_per_change(cast, keys, endpoint, path):
    do_suspend, do_restore = {"panel": lambda: _reseller_panel(cast), "console": lambda: _support_console(cast),
                              "api": lambda: _api(cast, keys), "cli": lambda: _cli(cast)}[path]()
    reason = {"panel": "panel", "console": "console", "api": "api", "cli": "cli"}[path]
    do_suspend()
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == "suspended"
    assert _events(cast) == [("customer.suspended", reason)]
    do_restore()
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == "active"
    assert _events(cast) == [("customer.suspended", reason), ("customer.restored", reason)]
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 2
    payload = WebhookEvent.objects.get(type="customer.suspended").payload
    assert payload["customer"] == {"id": cast.a.customer.pk, "name": "Alpha", "external_id": ""}


def test_the_event_is_written_in_the_changes_transaction(cast, endpoint):
    with transaction.atomic():
        suspend(actor=None, obj=cast.a.customer, reason="unpaid")
        assert _events(cast) == [("customer.suspended", "unpaid")]  # already there, before the commit
        transaction.set_rollback(True)
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == "active" and _events(cast) == []


def test_domains_mailboxes_and_credentials_have_their_own_events(cast, keys, endpoint):
    client = Client()
    sign_in_verified(client, cast.support)
    credential = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox).credential
    objects = {"domain": cast.a.domain, "mailbox": cast.a.mailbox, "credential": credential}
    for kind, obj in objects.items():
        url = reverse(f"support:{kind}_status", args=[obj.pk])
        assert client.post(url, {"reason": f"{kind} abuse"}).status_code == 302
        assert client.post(url, {"reason": f"{kind} cleared"}).status_code == 302
    assert _events(cast) == [("domain.suspended", "domain abuse"), ("domain.restored", "domain cleared"),
                             ("mailbox.suspended", "mailbox abuse"), ("mailbox.restored", "mailbox cleared"),
                             ("credential.suspended", "credential abuse"),
                             ("credential.restored", "credential cleared")]
    by_type = {e.type: e.payload for e in WebhookEvent.objects.all()}
    assert by_type["domain.suspended"]["domain"]["name"] == "alpha.test"
    assert by_type["mailbox.suspended"]["mailbox"] == {"id": cast.a.mailbox.pk, "address": "info@alpha.test"}
    assert by_type["credential.suspended"]["credential"]["username"] == credential.username


def test_a_mailbox_switched_off_through_the_api_makes_one_event(cast, keys, endpoint):
    client = keys.client("customer_a")
    url = f"/api/v1/mailboxes/{cast.a.mailbox.pk}/"
    assert client.patch(url, {"is_active": False}, content_type="application/json").status_code == 200
    assert client.patch(url, {"display_name": "Info"}, content_type="application/json").status_code == 200
    assert client.patch(url, {"is_active": True}, content_type="application/json").status_code == 200
    assert [t for t, _ in _events(cast)] == ["mailbox.suspended", "mailbox.restored"]


def test_suspending_twice_from_the_command_line_is_a_clear_error_and_one_event(cast, endpoint):
    from django.core.management.base import CommandError
    call_command("customer_suspend", "Alpha", "--reason", "unpaid")
    with pytest.raises(CommandError, match="already suspended"):
        call_command("customer_suspend", "Alpha", "--reason", "unpaid")
    with pytest.raises(CommandError, match="No customer named"):
        call_command("customer_restore", "Nobody", "--reason", "paid")
    assert _events(cast) == [("customer.suspended", "unpaid")]
