"""POST /api/v1/customers/{id}/login-links: a one-time sign-in link for a customer's panel user (billing-system
single sign-on). Valid for minutes and once; the sign-in page's rules apply; audited without the token."""

import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry, LoginLink
from accounts.services.suspension import suspend
from hostingmail.logjson import ScrubSecrets
from tests.support.signin import code_for, enrol_totp

pytestmark = pytest.mark.django_db


def _link(keys, who: str, customer, user) -> tuple[int, dict]:
    response = keys.client(who).post(f"/api/v1/customers/{customer.pk}/login-links/", {"user": user.pk},
                                     content_type="application/json")
    return response.status_code, response.json()


def _signed_in_as(client: Client):
    return client.session.get("_auth_user_id")


def test_a_resellers_link_signs_its_customers_user_in_once(cast, keys, settings):
    status, body = _link(keys, "reseller_a", cast.a.customer, cast.a.user)
    assert status == 201, body
    assert body["user"] == cast.a.user.pk and body["username"] == cast.a.user.username
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert timedelta(0) < expires - timezone.now() <= timedelta(seconds=settings.LOGIN_LINK_SECONDS)
    browser = Client()
    response = browser.get(body["url"])
    assert response.status_code == 302 and response.url == reverse("dashboard")
    assert response["Referrer-Policy"] == "no-referrer"
    assert _signed_in_as(browser) == str(cast.a.user.pk)
    assert browser.get(reverse("dashboard")).status_code == 200

    again = Client()
    response = again.get(body["url"])
    assert response.status_code == 410 and b"cannot be used" in response.content
    assert _signed_in_as(again) is None

    token = body["url"].rstrip("/").rsplit("/", 1)[1]
    created, used = (AuditEntry.objects.get(action=a) for a in ("user.login_link", "user.login_link_used"))
    assert created.actor_label == "api-key:reseller_a billing" and created.customer == cast.a.customer
    assert used.actor == cast.a.user
    for entry in AuditEntry.objects.all():
        assert token not in f"{entry.before} {entry.after} {entry.reason} {entry.object_repr}"
    assert not LoginLink.objects.filter(token_hash__contains=token).exists()


def test_an_expired_link_shows_a_clear_page_and_no_session(cast, keys):
    status, body = _link(keys, "support", cast.b.customer, cast.b.user)
    assert status == 201
    LoginLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    browser = Client()
    response = browser.get(body["url"])
    assert response.status_code == 410 and b"expired" in response.content
    assert _signed_in_as(browser) is None
    assert not AuditEntry.objects.filter(action="user.login_link_used").exists()


def test_an_unknown_token_is_the_same_clear_page(cast):
    browser = Client()
    response = browser.get(reverse("security:login_link", args=["hmsso_" + "x" * 43]))
    assert response.status_code == 410 and _signed_in_as(browser) is None


def test_foreign_customers_and_users_are_404(cast, keys):
    assert _link(keys, "reseller_a", cast.b.customer, cast.b.user)[0] == 404
    # Its own customer in the path, another customer's user in the body.
    assert _link(keys, "reseller_a", cast.a.customer, cast.b.user)[0] == 404
    assert _link(keys, "customer_a", cast.b.customer, cast.b.user)[0] == 404
    assert _link(keys, "customer_a", cast.a.customer, cast.b.user)[0] == 404
    # Staff are no customer's panel users.
    assert _link(keys, "support", cast.a.customer, cast.support)[0] == 404
    assert _link(keys, "customer_a_ro", cast.a.customer, cast.a.user)[0] == 403
    assert not LoginLink.objects.exists()


def test_a_customer_key_makes_links_for_its_own_users(cast, keys):
    status, body = _link(keys, "customer_a", cast.a.customer, cast.a.user)
    assert status == 201
    browser = Client()
    assert browser.get(body["url"]).status_code == 302 and _signed_in_as(browser) == str(cast.a.user.pk)


def test_a_suspended_customers_link_signs_no_one_in(cast, keys):
    status, body = _link(keys, "reseller_a", cast.a.customer, cast.a.user)
    assert status == 201
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    browser = Client()
    response = browser.get(body["url"])
    assert response.status_code == 410 and _signed_in_as(browser) is None


def test_a_user_with_two_factor_is_still_asked_for_a_code(cast, keys):
    device = enrol_totp(cast.a.user)
    status, body = _link(keys, "reseller_a", cast.a.customer, cast.a.user)
    assert status == 201
    browser = Client()
    response = browser.get(body["url"])
    assert response.status_code == 302 and response.url == reverse("security:code")
    assert _signed_in_as(browser) is None
    assert browser.get(reverse("dashboard")).status_code == 302  # not signed in yet
    response = browser.post(reverse("security:code"), {"token": code_for(device)})
    assert response.status_code == 302 and _signed_in_as(browser) == str(cast.a.user.pk)


def test_the_token_is_scrubbed_from_log_lines(cast, keys):
    status, body = _link(keys, "reseller_a", cast.a.customer, cast.a.user)
    token = body["url"].rstrip("/").rsplit("/", 1)[1]
    # Django logs a refused link's path ("Gone: /login/link/<token>/"); the log filter keeps the token out.
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 0, "Gone: %s",
                               (f"/login/link/{token}/",), None)
    ScrubSecrets().filter(record)
    assert token not in record.getMessage() and "/login/link/hmsso_" in record.getMessage()
