"""Panel lists cost the same number of queries for 2 rows as for 40 (no query per row)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Customer, Domain, Mailbox, SmtpCredential
from accounts.services.credentials import credential_create

pytestmark = pytest.mark.django_db


def _grow(cast, n: int) -> None:
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_domains=1000, max_mailboxes=1000)
    for i in range(n):
        domain = Domain.objects.create(name=f"extra{i}.alpha.test", customer=cast.a.customer)
        mailbox = Mailbox.objects.create(domain=domain, local_part=f"box{i}", password_hash="x", quota_mb=1)
        SmtpCredential.objects.create(username=f"smtp-extra{i}", secret_hash="x", customer=cast.a.customer,
                                      domain=domain, mailbox=mailbox if i % 2 else None)


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", ["dashboard", "domain_list", "mailbox_list", "credential_list"])
@pytest.mark.parametrize("who", ["a", "support"])
def test_list_queries_do_not_grow_with_rows(client, cast, name, who):
    credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    client.force_login(cast.a.user if who == "a" else cast.support)
    if name == "dashboard" and who == "support":
        url = reverse("customer_dashboard", args=[cast.a.customer.pk])
    else:
        url = reverse(name)
    few = _queries(client, url)
    _grow(cast, 40)
    assert _queries(client, url) == few


@pytest.mark.parametrize("name", ["dashboard", "domain_list", "mailbox_list", "credential_list"])
def test_supports_page_count_is_a_plain_count_of_the_listed_table(client, cast, name, monkeypatch):
    """Support sees everything: the paginator counts the table itself, without the joins, GROUP BY (a mailbox
    count per domain) or `IN (SELECT …)` scoping that make the database read every row for the count."""
    from accounts.views import common as views_common

    monkeypatch.setattr(views_common, "PAGE_SIZE", 1)  # more rows than a page: counted
    credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    client.force_login(cast.support)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse(name)).status_code == 200
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(")]
    assert len(counts) == 1
    assert not any(word in counts[0].upper() for word in (" JOIN ", "GROUP BY", " IN (SELECT")), counts[0]


@pytest.mark.parametrize("who", ["reseller_a_admin", "a"])
def test_mailbox_and_credential_counts_are_scoped_without_subqueries(client, cast, who, monkeypatch):
    from accounts.views import common as views_common

    monkeypatch.setattr(views_common, "PAGE_SIZE", 1)  # a page's worth of rows: counted
    credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    credential_create(actor=None, domain=cast.b.domain, mailbox=cast.b.mailbox)
    client.force_login(cast.reseller_a_admin if who == "reseller_a_admin" else cast.a.user)
    for name in ("mailbox_list", "credential_list"):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse(name))
        counts = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(")]
        assert len(counts) == 1 and " IN (SELECT" not in counts[0].upper()
        page = response.context["page"]
        assert page.paginator.count == len(page.paginator.object_list) >= 1
        assert all(row.domain.customer_id == cast.a.customer.pk for row in response.context["page"])


def test_lists_count_up_to_a_cap_and_say_more_than_past_it(client, cast, monkeypatch):
    from accounts.views import common as views_common

    _grow(cast, 8)
    monkeypatch.setattr(views_common, "COUNT_CAP", 5)
    monkeypatch.setattr(views_common, "PAGE_SIZE", 2)
    client.force_login(cast.a.user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("domain_list"))
    body = response.content.decode()
    assert "Page 1 of 3 (more than 5: search to narrow)" in body
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(")]
    assert len(counts) == 1 and "LIMIT 6" in counts[0].upper()
    # The last page is the cap's; a search under the cap is counted exactly.
    assert [d.name for d in client.get(reverse("domain_list"), {"page": 99}).context["page"]] == \
        list(Domain.objects.filter(customer=cast.a.customer).order_by("name").values_list("name", flat=True)[4:5])
    narrowed = client.get(reverse("domain_list"), {"q": "extra1"}).content.decode()
    assert "more than" not in narrowed
    assert Customer.objects.count() > 2
    monkeypatch.setattr(views_common, "COUNT_CAP", 2)
    client.force_login(cast.support)
    assert "More than 2 customers you look after." in client.get(reverse("dashboard")).content.decode()


def test_under_the_cap_lists_show_the_exact_count(client, cast):
    _grow(cast, 3)
    client.force_login(cast.a.user)
    page = client.get(reverse("domain_list")).context["page"]
    assert page.paginator.count == Domain.objects.filter(customer=cast.a.customer).count()
    assert not page.paginator.more_than
