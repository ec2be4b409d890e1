"""Panel sign-in: throttling, suspended accounts, two-factor (required for support), recovery codes, sessions."""

import re
from urllib.parse import unquote

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, Customer, PanelLoginFailure, PanelSession, Status
from accounts.services import security
from accounts.services.suspension import suspend
from tests.support.factories import PASSWORD
from tests.support.signin import code_for, enrol_totp, sign_in_verified

pytestmark = pytest.mark.django_db
LOGIN = "/login/"


def login(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def test_customer_signs_in_with_password_and_the_session_is_listed(client, cast):
    response = login(client, cast.a.user.username, HTTP_USER_AGENT="Firefox/140")
    assert response.status_code == 302 and response.url == reverse("dashboard")
    listed = PanelSession.objects.get(user=cast.a.user)
    assert listed.session_key == client.session.session_key
    assert listed.user_agent == "Firefox/140" and listed.client_ip == "127.0.0.1"


def test_wrong_password_is_a_form_error_and_counted(client, cast):
    response = login(client, cast.a.user.username, "wrong password")
    assert response.status_code == 200
    assert b"Please enter a correct" in response.content
    assert PanelLoginFailure.objects.filter(username=cast.a.user.username).count() == 1


def test_too_many_failures_for_a_username_refuse_even_the_right_password(client, cast, settings):
    settings.PANEL_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        login(client, cast.a.user.username, "wrong password")
    response = login(client, cast.a.user.username)
    assert response.status_code == 429
    assert "Too many failed sign-ins for this username" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another username from the same address is not affected by the per-username count.
    assert login(Client(), cast.b.user.username).status_code == 302


def test_too_many_failures_from_one_address_refuse_every_username(client, cast, settings):
    settings.PANEL_LOGIN_MAX_FAILURES_PER_IP = 4
    for n in range(4):
        login(client, f"nobody{n}", "wrong password")
    response = login(client, cast.a.user.username)
    assert response.status_code == 429
    assert "Too many failed sign-ins from your address" in response.content.decode()
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert login(other, cast.a.user.username).status_code == 302


def test_failures_older_than_the_window_do_not_count(client, cast, settings):
    settings.PANEL_LOGIN_MAX_FAILURES = 2
    for _ in range(2):
        login(client, cast.a.user.username, "wrong password")
    PanelLoginFailure.objects.update(created_at="2000-01-01T00:00:00Z")
    assert login(client, cast.a.user.username).status_code == 302


def test_suspended_customers_user_and_mailbox_owner_cannot_sign_in(client, cast):
    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid invoice")
    response = login(client, cast.a.user.username)
    assert response.status_code == 200
    assert "This account is suspended" in response.content.decode()
    assert "_auth_user_id" not in client.session
    response = login(client, cast.a.mailbox.address)
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_suspending_a_customer_signs_its_users_out_at_once(cast):
    customer_client, mailbox_client, other_client = Client(), Client(), Client()
    assert login(customer_client, cast.a.user.username).status_code == 302
    assert login(mailbox_client, cast.a.mailbox.address).status_code == 302
    assert login(other_client, cast.b.user.username).status_code == 302
    suspend(actor=cast.support, obj=cast.a.customer, reason="abuse report")
    for c in (customer_client, mailbox_client):
        response = c.get(reverse("dashboard"))
        assert response.status_code == 302 and response.url.startswith(LOGIN)
    assert other_client.get(reverse("dashboard")).status_code == 200
    assert not PanelSession.objects.filter(user__customer=cast.a.customer).exists()


def test_middleware_signs_out_a_session_whose_customer_became_suspended(client, cast, settings):
    settings.PANEL_SESSION_REFRESH_SECONDS = 0
    assert login(client, cast.a.user.username).status_code == 302
    # Changed behind the services' back (e.g. the admin): the next refresh notices.
    Customer.objects.filter(pk=cast.a.customer.pk).update(status=Status.SUSPENDED)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response.url.startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_middleware_refreshes_last_seen(client, cast, settings):
    settings.PANEL_SESSION_REFRESH_SECONDS = 0
    login(client, cast.a.user.username)
    PanelSession.objects.update(last_seen_at="2000-01-01T00:00:00Z")
    client.get(reverse("dashboard"))
    assert PanelSession.objects.get(user=cast.a.user).last_seen_at.year > 2000


# --- two-factor ---------------------------------------------------------------------------------------------


def test_support_must_enrol_at_first_sign_in_then_gets_recovery_codes(client, cast, settings):
    response = login(client, "support")
    assert response.status_code == 302 and response.url == reverse("security:enrol")
    assert "_auth_user_id" not in client.session  # not signed in before the code
    page = client.get(reverse("security:enrol"))
    device = TOTPDevice.objects.get(user=cast.support, confirmed=False)
    assert security.totp_secret(device) in page.content.decode() and b"<svg" in page.content
    wrong = client.post(reverse("security:enrol"), {"token": "000000" if code_for(device) != "000000" else "111111"})
    assert "That code is not right" in wrong.content.decode()
    response = client.post(reverse("security:enrol"), {"token": code_for(device)})
    assert response.status_code == 302 and response.url == reverse("security:recovery_codes_shown")
    response = client.get(response.url)
    codes = response.context["codes"]
    assert len(codes) == security.RECOVERY_CODES and codes[0] in response.content.decode()
    # Copy and download (a text file made from the page itself: the codes are stored nowhere else readable).
    page = response.content.decode()
    assert 'data-copy="#recovery-codes"' in page
    download = re.search(r'download="recovery-codes.txt" href="data:text/plain;charset=utf-8,([^"]+)"', page)[1]
    assert unquote(download).splitlines()[2:] == codes
    assert client.session["_auth_user_id"] == str(cast.support.pk)
    device.refresh_from_db()
    assert device.confirmed
    assert AuditEntry.objects.filter(action="user.otp_enable", actor=cast.support).exists()


def test_support_with_a_device_enters_a_code_at_every_sign_in(client, cast, settings):
    device = enrol_totp(cast.support)
    response = login(client, "support")
    assert response.url == reverse("security:code")
    assert "_auth_user_id" not in client.session
    bad = client.post(reverse("security:code"), {"token": "12345x"})
    assert "That code is not right" in bad.content.decode()
    assert "_auth_user_id" not in client.session
    response = client.post(reverse("security:code"), {"token": code_for(device)})
    assert response.status_code == 302 and response.url == reverse("dashboard")
    assert client.session["otp_device_id"] == device.persistent_id


@pytest.mark.parametrize("second", ["totp", "recovery"])
def test_a_wrong_code_then_the_right_one_signs_in_at_once(client, cast, second):
    device = enrol_totp(cast.support)
    codes = security.recovery_codes_new(user=cast.support)
    login(client, "support")
    assert client.post(reverse("security:code"), {"token": "000000"}).status_code == 200
    assert client.post(reverse("security:code"), {"token": "1234 5678"}).status_code == 200
    right = code_for(device) if second == "totp" else codes[0]
    response = client.post(reverse("security:code"), {"token": right})
    assert response.status_code == 302 and response.url == reverse("dashboard")
    assert client.session["_auth_user_id"] == str(cast.support.pk)


def test_a_code_cannot_be_used_twice(cast):
    device = enrol_totp(cast.support)
    first, second = Client(), Client()
    login(first, "support")
    code = code_for(device)
    assert first.post(reverse("security:code"), {"token": code}).status_code == 302
    login(second, "support")
    assert second.post(reverse("security:code"), {"token": code}).status_code == 200
    assert "_auth_user_id" not in second.session


def test_recovery_code_signs_in_once(client, cast):
    enrol_totp(cast.support)
    codes = security.recovery_codes_new(user=cast.support)
    login(client, "support")
    response = client.post(reverse("security:code"), {"token": codes[0]})
    assert response.status_code == 302
    assert security.recovery_codes_left(cast.support) == security.RECOVERY_CODES - 1
    again = Client()
    login(again, "support")
    assert again.post(reverse("security:code"), {"token": codes[0]}).status_code == 200
    assert "_auth_user_id" not in again.session


def test_code_step_expires(client, cast, settings):
    device = enrol_totp(cast.support)
    login(client, "support")
    settings.PANEL_LOGIN_CODE_SECONDS = -1
    response = client.post(reverse("security:code"), {"token": code_for(device)})
    assert response.status_code == 302 and response.url == reverse("login")
    assert "_auth_user_id" not in client.session


def test_wrong_codes_are_throttled_like_passwords(client, cast, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # only the panel's own throttle is tested here
    settings.PANEL_LOGIN_MAX_FAILURES = 2
    device = enrol_totp(cast.support)
    login(client, "support")
    for _ in range(2):
        client.post(reverse("security:code"), {"token": "99999999"})
    response = client.post(reverse("security:code"), {"token": code_for(device)})
    assert response.status_code == 429 and "_auth_user_id" not in client.session


def test_customer_may_turn_on_two_factor_and_is_then_asked_for_a_code(client, cast):
    login(client, cast.a.user.username)
    page = client.get(reverse("security:page"))
    assert page.status_code == 200 and b"Set up" in page.content
    client.get(reverse("security:enrol"))
    device = TOTPDevice.objects.get(user=cast.a.user)
    response = client.post(reverse("security:enrol"), {"token": code_for(device)}, follow=True)
    assert len(response.context["codes"]) == security.RECOVERY_CODES
    fresh = Client()
    assert login(fresh, cast.a.user.username).url == reverse("security:code")
    assert fresh.post(reverse("security:code"), {"token": code_for(device, 1)}).status_code == 302


def test_customer_may_turn_two_factor_off_but_support_may_not(client, cast):
    device = enrol_totp(cast.a.user)
    login(client, cast.a.user.username)
    client.post(reverse("security:code"), {"token": code_for(device)})
    client.post(reverse("security:otp_disable"))
    assert not security.has_otp(cast.a.user)
    support = Client()
    sign_in_verified(support, cast.support)
    response = support.post(reverse("security:otp_disable"), follow=True)
    assert "must keep two-factor" in response.content.decode()
    assert security.has_otp(cast.support)


def test_new_recovery_codes_replace_the_old_ones(client, cast, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    sign_in_verified(client, cast.support)
    old = security.recovery_codes_new(user=cast.support)
    response = client.post(reverse("security:recovery_codes"), follow=True)
    new = response.context["codes"]
    assert set(new).isdisjoint(old)
    assert security.verify_code(cast.support, old[0]) is None
    assert security.verify_code(cast.support, new[0]) is not None


def test_unverified_support_session_is_sent_to_the_code_page(client, cast):
    enrol_totp(cast.support)
    client.force_login(cast.support)
    response = client.get(LOGIN)
    assert response.status_code == 302 and response.url.startswith(reverse("security:code"))


# --- sessions -----------------------------------------------------------------------------------------------


def test_sessions_are_listed_and_another_one_can_be_signed_out(cast):
    laptop, phone = Client(HTTP_USER_AGENT="Laptop"), Client(HTTP_USER_AGENT="Phone")
    login(laptop, cast.a.user.username, HTTP_USER_AGENT="Laptop")
    login(phone, cast.a.user.username, HTTP_USER_AGENT="Phone")
    page = laptop.get(reverse("security:page")).content.decode()
    assert "Laptop" in page and "Phone" in page
    phone_session = PanelSession.objects.get(session_key=phone.session.session_key)
    phone.post(reverse("logout"))
    assert "Phone" not in laptop.get(reverse("security:page")).content.decode()  # signed out: not listed
    login(phone, cast.a.user.username, HTTP_USER_AGENT="Phone")
    phone_session = PanelSession.objects.get(session_key=phone.session.session_key)
    response = laptop.post(reverse("security:session_revoke", args=[phone_session.pk]))
    assert response.status_code == 302
    assert phone.get(reverse("dashboard")).status_code == 302
    assert laptop.get(reverse("dashboard")).status_code == 200
    assert AuditEntry.objects.filter(action="user.session_revoke").exists()


def test_someone_elses_session_cannot_be_revoked(cast):
    mine, theirs = Client(), Client()
    login(mine, cast.a.user.username)
    login(theirs, cast.b.user.username)
    their_session = PanelSession.objects.get(user=cast.b.user)
    assert mine.post(reverse("security:session_revoke", args=[their_session.pk])).status_code == 404
    assert theirs.get(reverse("dashboard")).status_code == 200


def test_security_pages_need_sign_in(client, cast):
    for name in ("security:page", "security:enrol"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response.url.startswith(LOGIN)


# --- admin ----------------------------------------------------------------------------------------------------


def test_admin_sends_non_staff_to_sign_in(client, cast):
    client.force_login(cast.a.user)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response.url
    response = client.get(response.url)
    assert response.status_code == 302 and response.url.startswith(LOGIN)


def test_admin_needs_a_verified_support_session(client, cast):
    client.force_login(cast.support)
    assert client.get("/admin/").status_code == 302
    verified = Client()
    sign_in_verified(verified, cast.support)
    assert verified.get("/admin/").status_code == 200


def test_upkeep_drops_old_failures_and_ended_sessions(cast):
    from accounts.tasks import purge_stale_sign_ins

    live, ended = Client(), Client()
    login(live, cast.a.user.username)
    login(ended, cast.b.user.username)
    ended.post(reverse("logout"))
    login(Client(), cast.a.user.username, "wrong password")
    PanelLoginFailure.objects.create(username="old", created_at="2000-01-01T00:00:00Z")
    assert purge_stale_sign_ins() == {"login_failures": 1, "sessions": 1}
    assert list(PanelSession.objects.values_list("user", flat=True)) == [cast.a.user.pk]
    assert PanelLoginFailure.objects.count() == 1


def test_next_page_is_kept_through_the_code_step(client, cast):
    device = enrol_totp(cast.support)
    response = client.post(LOGIN + "?next=/support/", {"username": "support", "password": PASSWORD,
                                                       "next": "/support/"})
    assert response.url == reverse("security:code")
    response = client.post(reverse("security:code"), {"token": code_for(device)})
    assert response.url == "/support/"


def test_next_page_on_another_site_is_ignored(client, cast):
    response = client.post(LOGIN, {"username": cast.a.user.username, "password": PASSWORD,
                                   "next": "https://evil.example/"})
    assert response.url == reverse("dashboard")


def test_an_unverified_session_cannot_replace_the_authenticator(client, cast):
    enrol_totp(cast.a.user)
    client.force_login(cast.a.user)  # e.g. a session from before two-factor was turned on
    response = client.get(reverse("security:enrol"))
    assert response.status_code == 302 and response.url == reverse("security:code")
    assert TOTPDevice.objects.filter(user=cast.a.user).count() == 1


def test_suspension_between_password_and_code_stops_the_sign_in(client, cast):
    device = enrol_totp(cast.a.user)
    assert login(client, cast.a.user.username).url == reverse("security:code")
    suspend(actor=cast.support, obj=cast.a.customer, reason="chargeback")
    client.post(reverse("security:code"), {"token": code_for(device)})
    assert "_auth_user_id" not in client.session


def test_signing_in_as_someone_else_who_needs_a_code_signs_the_first_user_out(client, cast):
    device = enrol_totp(cast.support)
    login(client, cast.a.user.username)
    assert login(client, "support").url == reverse("security:code")
    assert "_auth_user_id" not in client.session
    client.post(reverse("security:code"), {"token": code_for(device)})
    assert client.session["_auth_user_id"] == str(cast.support.pk)


def test_suspending_a_mailbox_signs_its_owner_out_and_keeps_them_out(cast):
    owner, customer = Client(), Client()
    assert login(owner, cast.a.mailbox.address).status_code == 302
    assert login(customer, cast.a.user.username).status_code == 302
    suspend(actor=cast.support, obj=cast.a.mailbox, reason="compromised")
    response = owner.get(reverse("dashboard"))
    assert response.status_code == 302 and response.url.startswith(LOGIN)
    assert "_auth_user_id" not in login(owner, cast.a.mailbox.address).wsgi_request.session
    assert customer.get(reverse("dashboard")).status_code == 200  # the customer's own users stay in


def test_sign_out_all_other_sessions(cast):
    here, phone, tablet, other_user = Client(), Client(), Client(), Client()
    for c in (here, phone, tablet):
        login(c, cast.a.user.username)
    login(other_user, cast.b.user.username)
    response = here.post(reverse("security:sessions_revoke_others"), follow=True)
    assert "2 other sessions signed out" in response.content.decode()
    assert phone.get(reverse("dashboard")).status_code == 302 and tablet.get(reverse("dashboard")).status_code == 302
    assert here.get(reverse("dashboard")).status_code == 200
    assert other_user.get(reverse("dashboard")).status_code == 200


# --- issue 17: nobody can lock an owner out of the panel -----------------------------------------------------


def test_wrong_passwords_from_many_addresses_never_lock_the_owner_out(cast, settings):
    settings.PANEL_LOGIN_MAX_FAILURES = 3
    victim = cast.a.user.username
    for n in range(2, 12):
        attacker = Client(REMOTE_ADDR=f"198.51.100.{n}")
        for _ in range(2):
            assert login(attacker, victim, "guess").status_code in (200, 429)
    assert "_auth_user_id" not in attacker.session
    # The owner, from an address that has not been failing, signs in with the right password.
    owner = Client(REMOTE_ADDR="203.0.113.50")
    assert login(owner, victim).status_code == 302
    assert owner.session["_auth_user_id"] == str(cast.a.user.pk)
    # The username is slowed: an address that failed for it is refused for it, even with the right password,
    # and a fresh address gets one guess.
    response = login(Client(REMOTE_ADDR="198.51.100.11"), victim)
    assert response.status_code == 429
    assert "Too many failed sign-ins for this username from your address" in response.content.decode()
    fresh = Client(REMOTE_ADDR="198.51.100.99")
    assert login(fresh, victim, "guess").status_code == 200
    assert login(fresh, victim).status_code == 429


def test_every_spelling_of_a_mailbox_address_counts_against_one_key(cast, settings):
    settings.PANEL_LOGIN_MAX_FAILURES = 3
    address = cast.a.mailbox.address
    client = Client(REMOTE_ADDR="198.51.100.20")
    for spelling in (f"{address}.", f"{address}...", f"<{address}>"):
        assert login(client, spelling, "guess").status_code == 200
    assert set(PanelLoginFailure.objects.values_list("username", flat=True)) == {address}
    for spelling in (address, f"{address.upper()}.", f"<{address}.>"):
        assert login(client, spelling).status_code == 429
    # The right password in any spelling from another address signs the owner in.
    assert login(Client(REMOTE_ADDR="203.0.113.51"), f"<{address}.>").status_code == 302
