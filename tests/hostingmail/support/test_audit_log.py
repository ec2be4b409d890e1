"""The audit log page: filters, pagination, and who sees which entries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from accounts.services.suspension import suspend
from accounts.views.audit import PAGE_SIZE

pytestmark = pytest.mark.django_db
URL = reverse("security:audit_log")


def _reprs(response):
    return [entry.object_repr for entry in response.context["page"]]


def test_support_sees_every_tenant(support_client, cast):
    reprs = _reprs(support_client.get(URL, {"action": "domain.create"}))
    assert {"alpha.test", "bravo.test", "direct.test"} <= set(reprs)


def test_reseller_sees_only_its_customers(client, cast):
    client.force_login(cast.reseller_a_admin)
    page = client.get(URL).content.decode()
    assert "alpha.test" in page and "bravo.test" not in page and "direct.test" not in page


def test_customer_sees_only_its_own(client, cast):
    client.force_login(cast.b.user)
    page = client.get(URL).content.decode()
    assert "bravo.test" in page and "alpha.test" not in page
    # Asking for another customer's entries gives nothing, not an error.
    response = client.get(URL, {"customer": cast.a.customer.pk})
    assert list(response.context["page"]) == []


def test_mailbox_owner_and_anonymous(client, cast):
    response = client.get(URL)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.post(reverse("login"), {"username": cast.a.mailbox.address, "password": "correct horse battery"})
    assert client.get(URL).status_code == 403


def test_filters_by_actor_object_customer_action_and_date(support_client, cast):
    suspend(actor=cast.support, obj=cast.a.domain, reason="phishing")
    suspend(actor=cast.reseller_b_admin, obj=cast.b.customer, reason="unpaid")
    old = AuditEntry.objects.create(actor_label="support", action="customer.suspend", object_type="customer",
                                    object_id=str(cast.b.customer.pk), object_repr="Bravo", customer=cast.b.customer)
    AuditEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))

    def actions(**params):
        return [(e.action, e.actor_label) for e in support_client.get(URL, params).context["page"]]

    assert actions(actor="reseller-b") == [("customer.suspend", "reseller-b")]
    assert actions(object_type="domain", object_id=str(cast.a.domain.pk), action="suspend") == [
        ("domain.suspend", "support")]
    assert ("customer.suspend", "reseller-b") in actions(customer=cast.b.customer.pk)
    assert all(a.startswith(("customer", "user", "domain", "mailbox")) for a, _ in actions(customer=cast.b.customer.pk))
    today = timezone.localdate()
    recent = actions(action="customer.suspend", date_from=(today - timedelta(days=1)).isoformat())
    assert recent == [("customer.suspend", "reseller-b")]
    older = actions(action="customer.suspend", date_to=(today - timedelta(days=30)).isoformat())
    assert older == [("customer.suspend", "support")]


def test_bad_filter_is_a_form_error(support_client):
    response = support_client.get(URL, {"date_from": "2026-02-10", "date_to": "2026-02-01"})
    assert "before the start date" in response.content.decode()
    assert list(response.context["page"]) == []


def test_paginated_with_constant_queries(support_client, cast):
    AuditEntry.objects.bulk_create(
        AuditEntry(actor=cast.support, actor_label="support", action="customer.note", object_type="customer",
                   object_id=str(cast.a.customer.pk), customer=cast.a.customer) for _ in range(PAGE_SIZE + 5))
    first = support_client.get(URL, {"action": "customer.note"})
    assert len(first.context["page"]) == PAGE_SIZE and first.context["page"].has_next()
    assert "?action=customer.note&page=2" in first.content.decode()
    second = support_client.get(URL, {"action": "customer.note", "page": 2})
    assert len(second.context["page"]) == 5
    with CaptureQueriesContext(connection) as few:
        support_client.get(URL, {"action": "customer.note", "page": 2})
    with CaptureQueriesContext(connection) as many:
        support_client.get(URL, {"action": "customer.note", "page": 1})
    assert len(few) == len(many)
