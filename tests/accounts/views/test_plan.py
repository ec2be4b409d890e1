from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry, Customer, SendUsage
from accounts.services.mailboxes import mailbox_create
from tests.support.factories import PASSWORD
from tests.support.permissions import assert_matrix

# The plan page is the customer user's own; staff change plans elsewhere, mailbox owners change none.
PLAN = {"owner": 200, "support": 403, "reseller": 403, "other_reseller": 403, "other_customer": 200,
        "direct": 200, "mailbox_owner": 403}
# Another customer's domain or mailbox does not exist for them.
OWN_OBJECT = PLAN | {"other_customer": 404, "direct": 404}


def test_plan_page_permission_matrix(client, cast):
    assert_matrix(client, cast, reverse("plan:home"), PLAN)
    assert_matrix(client, cast, reverse("plan:domain", args=[cast.a.domain.pk]), OWN_OBJECT)
    assert_matrix(client, cast, reverse("plan:mailbox", args=[cast.a.mailbox.pk]), OWN_OBJECT)


def test_plan_page_shows_own_objects_and_what_is_left(client, cast):
    Customer.objects.filter(pk=cast.a.customer.pk).update(send_per_hour=100, max_storage_mb=1000)
    SendUsage.objects.create(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.a.customer.pk,
                             minute=timezone.now() - timedelta(minutes=5), count=30)
    client.force_login(cast.a.user)
    response = client.get(reverse("plan:home"))
    body = response.content.decode()
    assert "info@alpha.test" in body and "bravo.test" not in body
    assert "30 of 100 · 70 left" in body
    assert "100 MB of 1000 MB · 900 MB left" in body


def test_plan_page_queries_do_not_grow_with_mailboxes(client, cast):
    client.force_login(cast.a.user)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("plan:home")).status_code == 200
        return len(ctx)

    before = count()
    for i in range(5):
        mailbox_create(actor=None, domain=cast.a.domain, local_part=f"u{i}", password=PASSWORD, quota_mb=10)
    assert count() == before


def test_customer_sets_a_mailbox_limit_within_the_domains(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("plan:domain", args=[cast.a.domain.pk]),
                           {"send_per_hour": 50, "send_per_day": "", "max_storage_mb": ""})
    assert response.status_code == 302
    url = reverse("plan:mailbox", args=[cast.a.mailbox.pk])
    response = client.post(url, {"send_per_hour": 51, "send_per_day": "", "quota_mb": 100})
    assert response.status_code == 200
    assert "alpha.test allows 50 recipients per hour" in " ".join(response.context["form"].errors["send_per_hour"])
    response = client.post(url, {"send_per_hour": 20, "send_per_day": "", "quota_mb": 200}, follow=True)
    assert "limits of info@alpha.test are saved" in response.content.decode()
    cast.a.mailbox.refresh_from_db()
    assert (cast.a.mailbox.send_per_hour, cast.a.mailbox.quota_mb) == (20, 200)
    entry = AuditEntry.objects.filter(action="mailbox.limits").latest("id")
    assert entry.actor == cast.a.user and entry.before == {"send_per_hour": None, "quota_mb": 100}


@pytest.mark.parametrize("data,field,error", [
    ({"send_per_hour": "", "send_per_day": "", "quota_mb": 999999}, "quota_mb", "MB of storage left to allocate"),
    ({"send_per_hour": -1, "send_per_day": "", "quota_mb": 100}, "send_per_hour", "greater than or equal to 0"),
    ({"send_per_hour": "", "send_per_day": "", "quota_mb": ""}, "quota_mb", "required"),
])
def test_bad_mailbox_limits_get_a_field_error(client, cast, data, field, error):
    client.force_login(cast.a.user)
    response = client.post(reverse("plan:mailbox", args=[cast.a.mailbox.pk]), data)
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors[field])
