"""Customers' panel users over the API: created by the customer's reseller admins or support, a password set by
them or by the user's own key; Django's password validators answer per field; the audit log has no password."""

import pytest
from django.test import Client

from accounts.models import AuditEntry, User
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db

GOOD = "a long enough password 9"


def _post(client, url, body):
    response = client.post(url, body, content_type="application/json")
    return response.status_code, response.json() if response.content else None


def test_a_reseller_creates_a_user_for_its_customer_who_can_sign_in(cast, keys):
    status, body = _post(keys.client("reseller_a"), "/api/v1/users/",
                         {"customer": cast.a.customer.pk, "username": "alpha-billing", "password": GOOD,
                          "email": "billing@alpha.test"})
    assert status == 201, body
    assert body["customer"] == cast.a.customer.pk and "password" not in body
    user = User.objects.get(pk=body["id"])
    assert user.role == User.Role.CUSTOMER and user.check_password(GOOD)
    assert Client().login(username="alpha-billing", password=GOOD)
    entry = AuditEntry.objects.get(action="user.create", after__username="alpha-billing")
    assert entry.actor_label == "api-key:reseller_a billing" and GOOD not in str(entry.after)
    listed = keys.client("customer_a").get(f"/api/v1/users/?customer={cast.a.customer.pk}").json()["results"]
    assert {u["username"] for u in listed} == {"alpha-user", "alpha-billing"}


def test_weak_passwords_and_bad_input_are_errors_per_field_and_write_nothing(cast, keys):
    client = keys.client("reseller_a")
    before = User.objects.count(), AuditEntry.objects.count()
    for body, fields in (
        ({"username": "alpha-two", "password": "short"}, {"password"}),
        ({"username": "alpha-two", "password": "1234567890123"}, {"password"}),
        ({"username": "alpha-two", "password": "alpha-two1"}, {"password"}),  # like the username
        ({"username": "alpha-two", "password": "password123"}, {"password"}),  # common
        ({"username": "alpha-two", "password": GOOD, "email": "not-an-address"}, {"email"}),
        ({"username": "alpha-user", "password": GOOD}, {"username"}),  # taken
        ({"password": GOOD}, {"username"}),
    ):
        status, answer = _post(client, "/api/v1/users/", {"customer": cast.a.customer.pk, **body})
        assert status == 400, (body, answer)
        assert set(answer["error"]["fields"]) == fields, (body, answer)
    assert (User.objects.count(), AuditEntry.objects.count()) == before


def test_who_may_create_users(cast, keys):
    body = {"username": "someone-new", "password": GOOD}
    assert _post(keys.client("reseller_a"), "/api/v1/users/", {"customer": cast.b.customer.pk, **body})[0] == 404
    assert _post(keys.client("customer_a"), "/api/v1/users/", body)[0] == 403  # the panel gives customers none
    assert _post(keys.client("customer_a_ro"), "/api/v1/users/", body)[0] == 403
    assert _post(keys.client("reseller_a"), "/api/v1/users/", body)[0] == 400  # which customer?
    assert not User.objects.filter(username="someone-new").exists()
    status, _ = _post(keys.client("support"), "/api/v1/users/", {"customer": cast.direct.customer.pk, **body})
    assert status == 201


def test_setting_a_users_password(cast, keys):
    url = f"/api/v1/users/{cast.a.user.pk}/password/"
    status, answer = _post(keys.client("reseller_a"), url, {"password": "short"})
    assert status == 400 and set(answer["error"]["fields"]) == {"password"}
    cast.a.user.refresh_from_db()
    assert cast.a.user.check_password(PASSWORD)
    assert _post(keys.client("reseller_b"), url, {"password": GOOD})[0] == 404
    assert _post(keys.client("customer_b"), url, {"password": GOOD})[0] == 404
    assert _post(keys.client("reseller_a"), url, {"password": GOOD})[0] == 204
    cast.a.user.refresh_from_db()
    assert cast.a.user.check_password(GOOD)
    entry = AuditEntry.objects.get(action="user.password")
    assert entry.actor_label == "api-key:reseller_a billing" and GOOD not in f"{entry.before} {entry.after}"


def test_a_customer_key_sets_only_its_own_users_password(cast, keys):
    other = User.objects.create_user(username="alpha-other", password=PASSWORD, role=User.Role.CUSTOMER,
                                     customer=cast.a.customer)
    assert _post(keys.client("customer_a"), f"/api/v1/users/{other.pk}/password/", {"password": GOOD})[0] == 403
    assert _post(keys.client("customer_a"), f"/api/v1/users/{cast.a.user.pk}/password/",
                 {"password": GOOD})[0] == 204
