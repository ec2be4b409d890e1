from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry, Customer, Reseller, SendUsage, SendUsageHourly, Status, User
from tests.support.permissions import assert_matrix

# The console belongs to reseller admins; everyone else is refused (anonymous: sign-in page).
CONSOLE = {"owner": 403, "support": 403, "reseller": 200, "other_reseller": 200, "other_customer": 403,
           "direct": 403, "mailbox_owner": 403}
# A customer of reseller A: only A's admin reaches it; B's admin gets a 404 as if it did not exist.
OWN_CUSTOMER = CONSOLE | {"other_reseller": 404}


@pytest.mark.parametrize("name", ["home", "customers", "customer_create", "branding"])
def test_console_pages_permission_matrix(client, cast, name):
    assert_matrix(client, cast, reverse(f"reseller:{name}"), CONSOLE)


def test_customer_page_permission_matrix(client, cast):
    assert_matrix(client, cast, reverse("reseller:customer", args=[cast.a.customer.pk]), OWN_CUSTOMER)
    # Suspend/restore: POST only; B's admin cannot reach A's customer.
    url = reverse("reseller:customer_suspend", args=[cast.a.customer.pk])
    assert_matrix(client, cast, url, OWN_CUSTOMER | {"reseller": 302}, method="post", data={"reason": "x"})


def test_reseller_never_sees_another_resellers_customers(client, cast):
    client.force_login(cast.reseller_b_admin)
    body = client.get(reverse("reseller:customers")).content.decode()
    assert "Bravo" in body and "Alpha" not in body and "Direct" not in body
    assert client.get(reverse("reseller:customer", args=[cast.direct.customer.pk])).status_code == 404
    response = client.post(reverse("reseller:customer", args=[cast.a.customer.pk]), {"max_domains": 1})
    assert response.status_code == 404
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.max_domains == 5


def _many_customers(reseller, n):
    Customer.objects.bulk_create([Customer(name=f"Cust {i:03}", reseller=reseller) for i in range(n)])


def test_customer_list_is_sortable_and_paginated_in_constant_queries(client, cast):
    _many_customers(cast.reseller_a, 60)
    client.force_login(cast.reseller_a_admin)
    counts = {}
    for per in (10, 50):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("reseller:customers"), {"per": per, "sort": "-mailboxes"})
        assert response.status_code == 200
        counts[per] = len(ctx)
        rows = response.context["page"].object_list
        assert len(rows) == per
        assert rows[0].name == "Alpha" and rows[0].n_mailboxes == 1  # the only one with a mailbox
    assert counts[10] == counts[50]
    response = client.get(reverse("reseller:customers"), {"sort": "-name", "page": 2, "per": 10})
    names = [c.name for c in response.context["page"].object_list]
    assert names == sorted(names, reverse=True) and names[0] == "Cust 049"
    # An unknown sort falls back to the name.
    assert client.get(reverse("reseller:customers"), {"sort": "password"}).status_code == 200


def test_create_customer_within_the_pool(client, cast):
    client.force_login(cast.reseller_a_admin)
    data = {"name": "Charlie", "username": "charlie", "email": "c@example.net", "password": "long enough secret",
            "max_domains": 2, "max_mailboxes": 10, "max_storage_mb": 1000, "send_per_hour": "",
            "send_per_day": "", "max_message_size_mb": 10, "max_recipients": 50, "max_aliases": 10}
    response = client.post(reverse("reseller:customer_create"), data)
    customer = Customer.objects.get(name="Charlie")
    assert response.status_code == 302 and response["Location"] == reverse("reseller:customer", args=[customer.pk])
    assert customer.reseller == cast.reseller_a and customer.max_mailboxes == 10
    assert User.objects.get(username="charlie").customer == customer

    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_mailboxes=100)
    response = client.post(reverse("reseller:customer_create"), data | {"name": "Delta", "username": "delta",
                                                                      "max_mailboxes": 41})
    assert response.status_code == 200
    assert "Your pool has 40 mailboxes left to hand out." in response.content.decode()
    assert not Customer.objects.filter(name="Delta").exists()


def test_edit_plan_shows_the_pool_error(client, cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_storage_mb=20000)
    client.force_login(cast.reseller_a_admin)
    url = reverse("reseller:customer", args=[cast.a.customer.pk])
    plan = {f: getattr(cast.a.customer, f) or "" for f in ("max_domains", "max_mailboxes", "max_storage_mb",
                                                           "send_per_hour", "send_per_day", "max_recipients",
                                                           "max_aliases")} | {"max_message_size_mb": 25}
    response = client.post(url, plan | {"max_storage_mb": 20001})
    assert "Your pool has 9760 MB of storage left to hand out." in response.content.decode()
    response = client.post(url, plan | {"max_storage_mb": 20000})
    assert response.status_code == 302
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.max_storage_mb == 20000
    assert AuditEntry.objects.filter(action="customer.limits", actor=cast.reseller_a_admin).exists()


def test_suspend_and_restore_a_customer(client, cast):
    client.force_login(cast.reseller_a_admin)
    pk = cast.a.customer.pk
    response = client.post(reverse("reseller:customer_suspend", args=[pk]), {"reason": ""}, follow=True)
    assert "Give a reason" in response.content.decode()
    client.post(reverse("reseller:customer_suspend", args=[pk]), {"reason": "unpaid invoice"})
    assert Customer.objects.get(pk=pk).status == Status.SUSPENDED
    assert AuditEntry.objects.filter(action="customer.suspend", reason="unpaid invoice").exists()
    response = client.post(reverse("reseller:customer_restore", args=[pk]), {"reason": "paid"}, follow=True)
    assert Customer.objects.get(pk=pk).status == Status.ACTIVE
    assert "is restored" in response.content.decode()


def test_home_shows_the_pool_and_a_chart_of_sending(client, cast):
    now = timezone.now()
    # Today's sending from the minute buckets, older days from the hourly totals kept for charts.
    SendUsage.objects.create(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.a.customer.pk, minute=now, count=7)
    for days_ago, count in ((3, 5), (20, 99)):
        SendUsageHourly.objects.create(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.a.customer.pk,
                                       hour=now - timedelta(days=days_ago), count=count)
    # Another reseller's customer's sending is not in the chart.
    SendUsage.objects.create(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.b.customer.pk, minute=now, count=1000)
    client.force_login(cast.reseller_a_admin)
    response = client.get(reverse("reseller:home"))
    chart = response.context["chart"]
    assert len(chart["groups"]) == 14 and chart["totals"]["count"] == 12 and chart["groups"][-1]["bars"][0]["value"] == 7
    body = response.content.decode()
    assert "<svg" in body and "12 recipients in all" in body
    assert "1 of 100 handed out · 99 left · 1 in use" in body  # customers, through the one usage-bar partial
    assert 'aria-label="Customers: 1 of 100 handed out"' in body


def test_branding_is_shown_to_the_resellers_customers(client, cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(cast.reseller_a_admin)
    logo = SimpleUploadedFile("logo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, content_type="image/png")
    response = client.post(reverse("reseller:branding"), {
        "panel_title": "Acme Mail", "support_email": "help@acme.example", "help_url": "https://acme.example/help",
        "logo": logo})
    assert response.status_code == 302
    client.force_login(cast.a.user)
    for url in (reverse("dashboard"), reverse("mailbox_settings", args=[cast.a.mailbox.pk])):
        body = client.get(url).content.decode()
        assert "Acme Mail" in body and "help@acme.example" in body, url
    body = client.get(reverse("dashboard")).content.decode()
    assert "reseller-logos/reseller-" in body and "https://acme.example/help" in body
    client.force_login(cast.b.user)
    assert "Acme Mail" not in client.get(reverse("dashboard")).content.decode()


def test_branding_rejects_a_bad_logo_next_to_the_field(client, cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("reseller:branding"), {
        "panel_title": "Acme", "logo": SimpleUploadedFile("x.svg", b"<svg/>")})
    assert response.status_code == 200
    assert "Upload a PNG, JPEG or GIF image." in response.context["form"].errors["logo"]



def test_edit_customer_name_and_contact(client, cast):
    url = reverse("reseller:customer_edit", args=[cast.a.customer.pk])
    assert_matrix(client, cast, url, OWN_CUSTOMER)
    client.force_login(cast.reseller_a_admin)
    Customer.objects.create(name="Taken", reseller=cast.reseller_a)
    response = client.post(url, {"name": "taken", "contact_email": ""})
    assert "already exists" in " ".join(response.context["form"].errors["name"])
    response = client.post(url, {"name": "Alpha Ltd", "contact_email": "ops@alpha.test"})
    assert response.status_code == 302
    cast.a.customer.refresh_from_db()
    assert (cast.a.customer.name, cast.a.customer.contact_email) == ("Alpha Ltd", "ops@alpha.test")
    entry = AuditEntry.objects.get(action="customer.update")
    assert entry.before["name"] == "Alpha" and entry.after["name"] == "Alpha Ltd"


def test_customer_list_finds_by_name_within_the_reseller_only(client, cast):
    _many_customers(cast.reseller_a, 3)
    Customer.objects.create(name="Cust 001 of B", reseller=cast.reseller_b)
    client.force_login(cast.reseller_a_admin)
    response = client.get(reverse("reseller:customers"), {"q": "cust 00", "sort": "-name"})
    assert [c.name for c in response.context["page"].object_list] == ["Cust 002", "Cust 001", "Cust 000"]
    assert 'value="cust 00"' in response.content.decode()


def test_reseller_may_hold_what_a_suspended_customer_queued(client, cast, django_capture_on_commit_callbacks):
    from unittest import mock

    from accounts.models import HoldRequest

    client.force_login(cast.reseller_a_admin)
    pk = cast.a.customer.pk
    assert 'name="hold"' in client.get(reverse("reseller:customer", args=[pk])).content.decode()
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, \
            django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("reseller:customer_suspend", args=[pk]), {"reason": "phished", "hold": "on"})
    request = HoldRequest.objects.get(applied_at__isnull=True)
    assert send_task.call_args.kwargs["kwargs"] == {"scope": "customer", "object_id": pk, "request_id": request.pk,
                                                    "reason": "customer Alpha suspended: phished"}
