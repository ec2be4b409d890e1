"""A mailbox owner signs in with address and mailbox password: own password and own app passwords only."""

import pytest
from django.urls import reverse

from accounts import hashing
from accounts.models import AuditEntry, User
from accounts.services.mailboxes import mailbox_update
from tests.support.factories import PASSWORD
from tests.support.permissions import MANAGE, assert_matrix, mailbox_user

pytestmark = pytest.mark.django_db
NEW = "my new mailbox secret"


def test_mailbox_owner_signs_in_with_address_and_password(client, cast):
    response = client.post("/login/", {"username": "INFO@alpha.test", "password": PASSWORD}, follow=True)
    user = response.context["user"]
    assert user.is_authenticated and user.role == User.Role.MAILBOX and user.mailbox == cast.a.mailbox
    body = response.content.decode()
    assert "info@alpha.test" in body and "Change my password" in body and "App passwords" in body


def test_disabled_mailbox_cannot_sign_in(client, cast):
    mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=False)
    response = client.post("/login/", {"username": "info@alpha.test", "password": PASSWORD})
    assert response.status_code == 200 and not response.context["user"].is_authenticated


def test_own_password_needs_the_current_one(client, cast):
    client.force_login(mailbox_user(cast.a.mailbox))
    response = client.post(reverse("own_password"), {"current_password": "wrong one!", "password": NEW, "password2": NEW})
    assert "not the current password" in response.context["form"].errors["current_password"][0]
    cast.a.mailbox.refresh_from_db()
    assert hashing.check_hash(PASSWORD, cast.a.mailbox.password_hash)


def test_own_password_change_keeps_the_session_and_audits(client, cast):
    user = mailbox_user(cast.a.mailbox)
    client.force_login(user)
    response = client.post(reverse("own_password"), {"current_password": PASSWORD, "password": NEW, "password2": NEW},
                           REMOTE_ADDR="198.51.100.3", follow=True)
    assert "Your password was changed" in response.content.decode()
    cast.a.mailbox.refresh_from_db()
    assert hashing.check_hash(NEW, cast.a.mailbox.password_hash)
    entry = AuditEntry.objects.get(action="mailbox.password", object_id=str(cast.a.mailbox.pk))
    assert entry.actor == user and entry.client_ip == "198.51.100.3"
    assert client.get(reverse("dashboard")).status_code == 200


def test_own_password_page_is_for_mailbox_owners_only(client, cast):
    expected = {who: 404 for who in MANAGE if who != "mailbox_owner"}
    assert_matrix(client, cast, reverse("own_password"), {**expected, "mailbox_owner": 200})


def test_mailbox_owner_cannot_manage_their_mailbox(client, cast):
    client.force_login(mailbox_user(cast.a.mailbox))
    for name in ("mailbox_edit", "mailbox_delete", "mailbox_password"):
        assert client.get(reverse(name, args=[cast.a.mailbox.pk])).status_code == 404
    response = client.post(reverse("mailbox_edit", args=[cast.a.mailbox.pk]), {"quota_mb": 99999, "is_active": "on"})
    assert response.status_code == 404
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.quota_mb == 100


@pytest.mark.parametrize("cut_off", ["mailbox", "customer"])
def test_disabling_the_mailbox_or_suspending_the_customer_ends_open_sessions(client, cast, cut_off):
    client.post("/login/", {"username": "info@alpha.test", "password": PASSWORD})
    assert client.get(reverse("dashboard")).status_code == 200
    if cut_off == "mailbox":
        mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=False)
    else:
        cast.a.customer.status = "suspended"
        cast.a.customer.save()
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_new_mailbox_password_ends_the_owners_other_sessions(client, cast):
    from django.test import Client

    other = Client()
    for c in (client, other):
        c.post("/login/", {"username": "info@alpha.test", "password": PASSWORD})
        assert c.get(reverse("dashboard")).status_code == 200
    client.post(reverse("own_password"), {"current_password": PASSWORD, "password": NEW, "password2": NEW})
    assert client.get(reverse("dashboard")).status_code == 200
    assert other.get(reverse("dashboard"))["Location"].startswith("/login/")
    # A reset by the customer ends the owner's sessions too.
    staff = Client()
    staff.force_login(cast.a.user)
    reset = {"password": "reset by admin!", "password2": "reset by admin!"}
    staff.post(reverse("mailbox_password", args=[cast.a.mailbox.pk]), reset)
    assert client.get(reverse("dashboard"))["Location"].startswith("/login/")


def test_panel_user_changes_their_own_password_with_audit(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("account_password"), {"old_password": "wrong", "new_password1": "x",
                                                         "new_password2": "x"})
    assert response.context["form"].errors["old_password"] and response.context["form"].errors["new_password2"]
    new = "a brand new panel secret"
    response = client.post(reverse("account_password"), {"old_password": PASSWORD, "new_password1": new,
                                                         "new_password2": new}, REMOTE_ADDR="192.0.2.99", follow=True)
    assert "Your password was changed" in response.content.decode()
    cast.a.user.refresh_from_db()
    assert cast.a.user.check_password(new)
    entry = AuditEntry.objects.get(action="user.password")
    assert entry.actor == cast.a.user and entry.customer == cast.a.customer and entry.client_ip == "192.0.2.99"
    assert client.get(reverse("dashboard")).status_code == 200  # this session stays signed in


def test_account_password_page_for_every_role(client, cast):
    expected = {who: 200 for who in MANAGE if who != "mailbox_owner"}
    assert_matrix(client, cast, reverse("account_password"), {**expected, "mailbox_owner": 302})
