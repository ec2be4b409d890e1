import pytest
from django.urls import reverse

from accounts.services.credentials import credential_create, credential_revoke
from tests.support.permissions import MANAGE, assert_matrix, assert_shows_only, mailbox_user

pytestmark = pytest.mark.django_db


def test_customer_dashboard_shows_its_objects_and_plan_usage(client, cast):
    customer = cast.a.customer
    customer.max_domains, customer.max_mailboxes, customer.max_storage_mb = 4, 10, 1000
    customer.save()
    credential = credential_create(actor=None, domain=cast.a.domain, description="web shop").credential
    client.force_login(cast.a.user)
    response = client.get(reverse("dashboard"))
    body = response.content.decode()
    assert response.context["usage"] == {"domains": {"used": 1, "limit": 4}, "mailboxes": {"used": 1, "limit": 10},
                                         "storage_mb": {"used": 100, "limit": 1000}}
    assert '<progress value="1" max="4"' in body and '<progress value="100" max="1000"' in body
    assert "alpha.test" in body and "info@alpha.test" in body and credential.username in body
    assert "bravo.test" not in body and "direct.test" not in body


def test_revoked_credentials_are_not_on_the_dashboard(client, cast):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    credential_revoke(actor=None, credential=credential)
    client.force_login(cast.a.user)
    assert credential.username not in client.get(reverse("dashboard")).content.decode()


def test_staff_home_lists_the_customers_they_look_after(client, cast):
    url = reverse("dashboard")
    assert_shows_only(client, cast.reseller_a_admin, url, ("Alpha",), ("Bravo", "Direct"))
    assert_shows_only(client, cast.support, url, ("Alpha", "Bravo", "Direct"), ())


def test_customer_dashboard_permission_matrix(client, cast):
    assert_matrix(client, cast, reverse("customer_dashboard", args=[cast.a.customer.pk]), MANAGE)
    assert_matrix(client, cast, reverse("dashboard"), {who: 200 for who in MANAGE})


def test_nav_shows_links_by_role(client, cast):
    client.force_login(cast.a.user)
    body = client.get(reverse("dashboard")).content.decode()
    assert reverse("domain_list") in body and reverse("admin:index") not in body
    client.force_login(cast.support)
    assert reverse("admin:index") in client.get(reverse("dashboard")).content.decode()
    client.force_login(mailbox_user(cast.a.mailbox))
    body = client.get(reverse("dashboard")).content.decode()
    assert "App passwords" in body and reverse("domain_list") not in body


def test_pages_use_only_local_assets(client, cast):
    client.force_login(cast.a.user)
    body = client.get(reverse("dashboard")).content.decode()
    assert "/static/hostingmail.css" in body and "/static/django_htmx/htmx-2.min.js" in body
    assert "http://" not in body.replace("http://schemas", "") and "https://" not in body


def test_dashboard_shows_the_first_ten_of_long_lists_with_a_link_to_all(client, cast, django_assert_max_num_queries):
    from accounts.models import Customer, Domain

    Customer.objects.filter(pk=cast.a.customer.pk).update(max_domains=100)
    for i in range(12):
        Domain.objects.create(name=f"d{i:02}.alpha.test", customer=cast.a.customer)
    client.force_login(cast.a.user)
    with django_assert_max_num_queries(20):
        body = client.get(reverse("dashboard")).content.decode()
    assert "d08.alpha.test" in body and "d09.alpha.test" not in body and "All 13 domains" in body


def test_staff_home_searches_customers(client, cast):
    client.force_login(cast.support)
    response = client.get(reverse("dashboard"), {"q": "brav"})
    assert [c.name for c in response.context["page"]] == ["Bravo"]
    client.force_login(cast.reseller_a_admin)
    assert list(client.get(reverse("dashboard"), {"q": "brav"}).context["page"]) == []
