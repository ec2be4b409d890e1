"""The support console's one search box."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Domain
from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.tenants import customer_create
from hostingmail.support.search import search
from relay.models import QueuedMessage

pytestmark = pytest.mark.django_db


def _labels(results, kind):
    return [hit.label for hit in results[kind]]


def test_finds_customer_by_part_of_its_name(cast):
    results = search(cast.support, "alph")
    assert _labels(results, "customers") == ["Alpha"]
    assert results["customers"][0].customer_id == cast.a.customer.pk


@pytest.mark.parametrize("query", ["bücher.test", "BÜCHER.test", "xn--bcher-kva.test", "bücher"])
def test_finds_domain_typed_in_unicode_or_idna(cast, query):
    domain = domain_create(actor=None, customer=cast.b.customer, name="bücher.test")
    results = search(cast.support, query)
    assert _labels(results, "domains") == ["bücher.test"]
    assert results["domains"][0].customer_id == domain.customer_id


def test_finds_mailbox_by_address_in_any_form(cast):
    domain_create(actor=None, customer=cast.b.customer, name="bücher.test", verified=True)
    mailbox = mailbox_create(actor=None, domain=Domain.objects.get(name="xn--bcher-kva.test"),
                             local_part="kasse", password="correct horse battery", quota_mb=1)
    for query in ("kasse@bücher.test", "KASSE@xn--bcher-kva.test", "kas@bücher.test"):
        results = search(cast.support, query)
        assert _labels(results, "mailboxes") == ["kasse@bücher.test"], query
        assert results["mailboxes"][0].customer_id == mailbox.domain.customer_id
    assert _labels(search(cast.support, "info@alpha.test"), "mailboxes") == ["info@alpha.test"]


def test_finds_credential_by_username(cast):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    results = search(cast.support, credential.username.upper())
    assert _labels(results, "credentials") == [credential.username]
    assert results["credentials"][0].customer_id == cast.a.customer.pk


def test_finds_message_by_queue_id(cast):
    message = QueuedMessage.objects.create(customer=cast.b.customer, mail_from="info@bravo.test")
    results = search(cast.support, message.queue_id.lower())
    assert _labels(results, "messages") == [message.queue_id]
    assert results["messages"][0].url_name == "relay:message_detail"


def test_empty_query_finds_nothing(cast):
    assert all(hits == [] for hits in search(cast.support, "  ").values())


def test_search_scopes_like_every_other_read(cast):
    # The function is used by support only, but it goes through the selectors: a reseller sees only its own.
    results = search(cast.reseller_a_admin, "test")
    domains = _labels(results, "domains")
    assert "alpha.test" in domains and "bravo.test" not in domains


def test_search_page_groups_results_and_links_to_the_customer_page(support_client, cast):
    credential = credential_create(actor=None, domain=cast.b.domain).credential
    response = support_client.get(reverse("support:home"), {"q": "bravo"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-kind="customers"' in page and 'data-kind="domains"' in page
    assert reverse("support:customer", args=[cast.b.customer.pk]) in page
    response = support_client.get(reverse("support:home"), {"q": credential.username})
    assert 'data-kind="credentials"' in response.content.decode()
    assert support_client.get(reverse("support:home"), {"q": "nothing-like-this"}).context["found"] == 0


def test_customer_names_with_spaces_are_found(cast):
    customer_create(actor=None, name="Acme Widgets Ltd", reseller=cast.reseller_a)
    assert _labels(search(cast.support, "widgets ltd"), "customers") == ["Acme Widgets Ltd"]


def test_search_page_queries_do_not_grow_with_the_hits(support_client, cast):
    url = reverse("support:home")
    with CaptureQueriesContext(connection) as one:
        support_client.get(url, {"q": "bravo"})
    for n in range(6):
        customer = customer_create(actor=None, name=f"Bravo {n}", reseller=cast.reseller_b)
        domain_create(actor=None, customer=customer, name=f"bravo{n}.test")
    with CaptureQueriesContext(connection) as many:
        response = support_client.get(url, {"q": "bravo"})
    assert response.context["found"] == 14
    assert len(many) == len(one)


def test_finds_alias_by_address_in_any_form(support_client, cast):
    from accounts.services.aliases import alias_create
    domain = domain_create(actor=None, customer=cast.b.customer, name="bücher.test", verified=True)
    alias = alias_create(actor=None, domain=domain, local_part="team", destinations=["boss@example.org"])
    for query in ("team@bücher.test", "TEAM@xn--bcher-kva.test", "te@bücher"):
        results = search(cast.support, query)
        assert _labels(results, "aliases") == ["team@bücher.test"], query
        assert results["aliases"][0].url_name == "alias_edit" and results["aliases"][0].url_pk == alias.pk
    assert search(cast.reseller_a_admin, "team@bücher.test")["aliases"] == []
    page = support_client.get(reverse("support:home"), {"q": "team@bücher.test"}).content.decode()
    assert reverse("alias_edit", args=[alias.pk]) in page and "boss@example.org" in page


def test_part_of_a_local_part_finds_the_mailbox_and_alias_without_the_domain(cast):
    from accounts.services.aliases import alias_create
    mailbox_create(actor=None, domain=cast.b.domain, local_part="anna", password="correct horse battery", quota_mb=1)
    mailbox_create(actor=None, domain=cast.a.domain, local_part="joanna", password="correct horse battery", quota_mb=1)
    alias_create(actor=None, domain=cast.a.domain, local_part="anna.sales", destinations=["x@example.org"])
    results = search(cast.support, "anna")
    assert _labels(results, "mailboxes") == ["joanna@alpha.test", "anna@bravo.test"]
    assert _labels(results, "aliases") == ["anna.sales@alpha.test"]
    assert _labels(search(cast.support, "Ann"), "mailboxes") == ["joanna@alpha.test", "anna@bravo.test"]
    assert _labels(search(cast.support, "anna@bra"), "mailboxes") == ["anna@bravo.test"]


def test_every_hit_is_a_link(support_client, cast):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    message = QueuedMessage.objects.create(customer=cast.a.customer, mail_from="info@alpha.test")
    from accounts.services.aliases import alias_create
    alias_create(actor=None, domain=cast.a.domain, local_part="info2", destinations=["x@example.org"])
    for query in ("alpha", "info", credential.username[:6], message.queue_id):
        response = support_client.get(reverse("support:home"), {"q": query})
        hits = [hit for kind in response.context["results"].values() for hit in kind]
        assert hits, query
        page = response.content.decode()
        for hit in hits:
            url = reverse(hit.url_name, args=[hit.url_pk])
            assert f'<a class="hit" href="{url}">{hit.label}</a>' in page
            assert support_client.get(url).status_code == 200, url
    assert 'class="searchbox"' in page and 'type="search"' in page
