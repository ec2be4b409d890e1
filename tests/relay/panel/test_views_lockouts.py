from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from relay.models import AuthLockout
from tests.support.permissions import assert_matrix
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db


def lock(value, *, customer=None, kind=AuthLockout.Kind.USERNAME, minutes=15, **fields):
    return AuthLockout.objects.create(kind=kind, value=value, customer=customer, failures=10,
                                      locked_until=timezone.now() + timedelta(minutes=minutes), **fields)


def shown(client, user):
    client.force_login(user)
    response = client.get(reverse("relay:lockout_list"))
    assert response.status_code == 200
    return {lo.value for lo in response.context["active"]}, {lo.value for lo in response.context["recent"]}


def test_support_and_the_affected_customer_see_a_lockout(client, cast):
    lock("info@alpha.test", customer=cast.a.customer)
    lock("info@bravo.test", customer=cast.b.customer)
    lock("203.0.113.9", kind=AuthLockout.Kind.ADDRESS)
    lock("old@alpha.test", customer=cast.a.customer, minutes=-5)
    lock("long-ago@alpha.test", customer=cast.a.customer, minutes=-8 * 24 * 60)
    assert shown(client, cast.a.user) == ({"info@alpha.test"}, {"old@alpha.test"})
    assert shown(client, cast.reseller_a_admin) == ({"info@alpha.test"}, {"old@alpha.test"})
    assert shown(client, cast.b.user) == ({"info@bravo.test"}, set())
    assert shown(client, cast.direct.user) == (set(), set())
    assert shown(client, cast.support) == ({"info@alpha.test", "info@bravo.test", "203.0.113.9"}, {"old@alpha.test"})


def test_lockout_list_sends_anonymous_to_login(client, cast):
    response = client.get(reverse("relay:lockout_list"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_lift_button_only_for_support(client, cast):
    item = lock("info@alpha.test", customer=cast.a.customer)
    lift = reverse("relay:lockout_lift", args=[item.pk])
    for user, visible in ((cast.support, True), (cast.a.user, False)):
        client.force_login(user)
        assert (lift in client.get(reverse("relay:lockout_list")).content.decode()) is visible


def test_support_lifts_a_lockout_with_an_audit_entry(client, cast):
    item = lock("info@alpha.test", customer=cast.a.customer)
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:lockout_lift", args=[item.pk]), {"reason": " customer called "},
                           REMOTE_ADDR="192.0.2.44")
    assert response.status_code == 302 and response["Location"] == reverse("relay:lockout_list")
    item.refresh_from_db()
    assert item.lifted_at is not None and item.lifted_by == cast.support
    entry = AuditEntry.objects.get(action="lockout.lift")
    assert entry.actor == cast.support and entry.client_ip == "192.0.2.44" and entry.customer == cast.a.customer
    assert entry.reason == "customer called"
    assert shown(client, cast.a.user) == (set(), {"info@alpha.test"})


def test_only_support_may_lift(client, cast):
    item = lock("info@alpha.test", customer=cast.a.customer)
    assert_matrix(client, cast, reverse("relay:lockout_lift", args=[item.pk]),
                  {"owner": 403, "reseller": 403, "other_reseller": 403, "other_customer": 403, "direct": 403,
                   "mailbox_owner": 403}, method="post")  # the role gate answers before the lockout is looked up
    item.refresh_from_db()
    assert item.lifted_at is None
