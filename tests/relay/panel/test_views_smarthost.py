"""Support sets a sender domain's smart host in the panel; delivery then uses it instead of MX lookup."""

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, Domain
from relay.delivery import smarthost
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db
URL = "smtp://relay-user:s3cret-pass@smarthost.example.net:2525?tls=starttls"


def test_support_routes_a_domain_through_a_smart_host_with_an_audited_reason(client, cast):
    sign_in_verified(client, cast.support)
    page = reverse("relay:domain_smarthost", args=[cast.a.domain.pk])
    assert b"MX lookup" in client.get(page).content

    response = client.post(page, {"url": URL, "reason": "customer's own outbound filter"})
    assert response.status_code == 302 and response.url == reverse("support:customer", args=[cast.a.customer.pk])

    domain = Domain.objects.get(pk=cast.a.domain.pk)
    assert domain.smarthost_url == URL
    route = smarthost.for_domain(domain)
    assert (route.host, route.port, route.tls, route.username) == ("smarthost.example.net", 2525, "starttls",
                                                                   "relay-user")
    entry = AuditEntry.objects.get(action="domain.smarthost")
    assert entry.actor == cast.support and entry.reason == "customer's own outbound filter"
    assert entry.before == {"smarthost": ""}
    assert entry.after == {"smarthost": "smtp://relay-user:***@smarthost.example.net:2525?tls=starttls"}
    # The password is in neither the audit entry nor the page that shows the route.
    page_text = client.get(page).content.decode()
    assert "s3cret-pass" not in page_text and "s3cret-pass" not in str(entry.after)
    assert "relay-user:***@smarthost.example.net" in page_text

    # Empty: back to MX routing.
    client.post(page, {"url": "", "reason": "filter retired"})
    assert Domain.objects.get(pk=cast.a.domain.pk).smarthost_url == ""


@pytest.mark.parametrize("url, error", [
    ("http://smarthost.example.net", "starts with smtp:// or smtps://"),
    ("smtp://smarthost.example.net:99999", "port is not a number"),
    ("smtp://user:pw@smarthost.example.net?tls=none", "never sent to a smart host without TLS"),
    ("smtp://smarthost.example.net?colour=blue", "Unknown smart host option"),
])
def test_a_bad_smart_host_url_is_a_form_error_and_changes_nothing(client, cast, url, error):
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:domain_smarthost", args=[cast.a.domain.pk]), {"url": url, "reason": "x"})
    assert response.status_code == 200 and error in response.content.decode()
    assert Domain.objects.get(pk=cast.a.domain.pk).smarthost_url == ""
    assert not AuditEntry.objects.filter(action="domain.smarthost").exists()


def test_a_reason_is_required(client, cast):
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:domain_smarthost", args=[cast.a.domain.pk]), {"url": URL, "reason": ""})
    assert response.status_code == 200 and Domain.objects.get(pk=cast.a.domain.pk).smarthost_url == ""


def test_only_support_sets_smart_hosts(client, cast):
    page = reverse("relay:domain_smarthost", args=[cast.a.domain.pk])
    assert client.get(page).status_code == 302  # anonymous: to the sign-in page
    for user in (cast.a.user, cast.reseller_a_admin):
        client.force_login(user)
        assert client.post(page, {"url": URL, "reason": "mine"}).status_code == 403
    assert Domain.objects.get(pk=cast.a.domain.pk).smarthost_url == ""


def test_the_customer_page_links_to_each_domains_route(client, cast):
    sign_in_verified(client, cast.support)
    page = client.get(reverse("support:customer", args=[cast.a.customer.pk])).content.decode()
    assert reverse("relay:domain_smarthost", args=[cast.a.domain.pk]) in page
