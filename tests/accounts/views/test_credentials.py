from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import hashing
from accounts.models import AuditEntry, HoldRequest, SmtpCredential
from accounts.services.credentials import credential_create
from accounts.services.mailboxes import mailbox_create
from tests.support.permissions import DENIED, MANAGE, assert_matrix, mailbox_user

pytestmark = pytest.mark.django_db


def _credential(tenant, **kwargs):
    return credential_create(actor=None, domain=tenant.domain, **kwargs).credential


def test_credential_pages_permission_matrix(client, cast):
    credential = _credential(cast.a, mailbox=cast.a.mailbox)
    # A mailbox owner manages the app passwords of their own address.
    everyone_of_a = {**MANAGE, "mailbox_owner": 200}
    assert_matrix(client, cast, reverse("credential_revoke", args=[credential.pk]), everyone_of_a)
    assert_matrix(client, cast, reverse("credential_settings", args=[credential.pk]), everyone_of_a)
    assert_matrix(client, cast, reverse("credential_list"), {who: 200 for who in MANAGE})
    add = reverse("credential_add")
    assert_matrix(client, cast, add, {"owner": 200, "mailbox_owner": 200, "support": 404, "reseller": 404})
    assert_matrix(client, cast, f"{add}?customer={cast.a.customer.pk}",
                  {"owner": 200, "support": 200, "reseller": 200, "other_reseller": 404, "sibling": 200})


def test_domain_wide_credential_is_hidden_from_a_mailbox_owner(client, cast):
    credential = _credential(cast.a)
    client.force_login(mailbox_user(cast.a.mailbox))
    assert client.get(reverse("credential_settings", args=[credential.pk])).status_code == 404
    assert credential.username not in client.get(reverse("credential_list")).content.decode()


def test_credential_list_shows_last_use_and_no_foreign_credentials(client, cast):
    mine = _credential(cast.a, mailbox=cast.a.mailbox, description="web shop")
    SmtpCredential.objects.filter(pk=mine.pk).update(last_used_at=timezone.now(), last_used_ip="203.0.113.77")
    foreign = _credential(cast.b, description="bravo printer")
    client.force_login(cast.a.user)
    body = client.get(reverse("credential_list")).content.decode()
    assert mine.username in body and "web shop" in body and "203.0.113.77" in body
    assert foreign.username not in body and "bravo printer" not in body


def test_create_credential_shows_the_secret_once_and_stores_only_a_hash(client, cast):
    client.force_login(cast.a.user)
    expires = (timezone.localtime() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("credential_add"), {
        "scope": f"m:{cast.a.mailbox.pk}", "description": "web shop", "allowed_networks": "192.0.2.0/24, 2001:db8::1",
        "expires_at": expires}, REMOTE_ADDR="192.0.2.10", follow=True)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = response.context["secret"]
    credential = SmtpCredential.objects.get(description="web shop")
    assert secret in response.content.decode() and "shown only this once" in response.content.decode()
    assert credential.mailbox == cast.a.mailbox and credential.domain == cast.a.domain
    assert credential.allowed_networks == "192.0.2.0/24\n2001:db8::1/128" and credential.expires_at is not None
    assert secret not in credential.secret_hash and hashing.check_hash(secret, credential.secret_hash)
    entry = AuditEntry.objects.get(action="credential.create", object_id=str(credential.pk))
    assert entry.client_ip == "192.0.2.10" and secret not in str(entry.after)
    # Never again: not on any later page.
    for url in (reverse("credential_list"), reverse("credential_settings", args=[credential.pk]),
                reverse("dashboard"), reverse("mailbox_edit", args=[cast.a.mailbox.pk]),
                reverse("domain_detail", args=[cast.a.domain.pk]), reverse("credential_add"),
                reverse("credential_mobileconfig", args=[credential.pk])):
        assert secret not in client.get(url).content.decode(), url


def test_create_domain_wide_credential(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("credential_add"), {"scope": f"d:{cast.a.domain.pk}"}, follow=True)
    credential = response.context["credential"]
    assert credential.mailbox is None and credential.domain == cast.a.domain
    assert "any address @alpha.test" in response.content.decode()


@pytest.mark.parametrize("data, field, error", [
    ({"allowed_networks": "192.0.2.0/33"}, "allowed_networks", "is not an IP address or network"),
    ({"expires_at": "2001-01-01T00:00"}, "expires_at", "must be in the future"),
    ({"scope": ""}, "scope", "This field is required"),
])
def test_create_credential_errors_are_next_to_the_fields(client, cast, data, field, error):
    client.force_login(cast.a.user)
    response = client.post(reverse("credential_add"), {"scope": f"d:{cast.a.domain.pk}", **data})
    assert error in response.context["form"].errors[field][0]
    assert "The credential was not created" in response.content.decode()
    assert not SmtpCredential.objects.exists()


def test_create_credential_for_another_tenants_scope_is_refused(client, cast):
    client.force_login(cast.a.user)
    for scope in (f"m:{cast.b.mailbox.pk}", f"d:{cast.b.domain.pk}", f"d:{cast.direct.domain.pk}"):
        response = client.post(reverse("credential_add"), {"scope": scope})
        assert "Select a valid choice" in response.context["form"].errors["scope"][0]
    client.force_login(cast.reseller_b_admin)
    response = client.post(reverse("credential_add"), {"scope": f"d:{cast.a.domain.pk}", "customer": cast.a.customer.pk})
    assert response.status_code == 404
    assert not SmtpCredential.objects.exists()


def test_mailbox_owner_creates_app_passwords_for_their_own_address_only(client, cast):
    other = mailbox_create(actor=None, domain=cast.a.domain, local_part="sales", password="another good one",
                           quota_mb=10)
    client.force_login(mailbox_user(cast.a.mailbox))
    form = client.get(reverse("credential_add")).context["form"]
    assert [value for value, _ in form.fields["scope"].choices] == [f"m:{cast.a.mailbox.pk}"]
    for scope in (f"d:{cast.a.domain.pk}", f"m:{other.pk}"):
        response = client.post(reverse("credential_add"), {"scope": scope})
        assert "Select a valid choice" in response.context["form"].errors["scope"][0]
    response = client.post(reverse("credential_add"), {"scope": f"m:{cast.a.mailbox.pk}", "description": "phone"},
                           follow=True)
    assert response.context["credential"].mailbox == cast.a.mailbox


def test_revoke_asks_then_revokes_with_audit(client, cast):
    credential = _credential(cast.a, mailbox=cast.a.mailbox)
    client.force_login(cast.a.user)
    assert "Revoke" in client.get(reverse("credential_revoke", args=[credential.pk])).content.decode()
    response = client.post(reverse("credential_revoke", args=[credential.pk]), follow=True)
    credential.refresh_from_db()
    assert credential.revoked_at is not None and not credential.is_active
    assert f"{credential.username} was revoked" in response.content.decode()
    assert AuditEntry.objects.filter(action="credential.revoke", object_id=str(credential.pk)).exists()


def test_mailbox_owner_revokes_their_own_app_password(client, cast):
    credential = _credential(cast.a, mailbox=cast.a.mailbox)
    client.force_login(mailbox_user(cast.a.mailbox))
    client.post(reverse("credential_revoke", args=[credential.pk]))
    credential.refresh_from_db()
    assert credential.revoked_at is not None


def test_revoke_of_another_tenants_credential_is_404(client, cast):
    credential = _credential(cast.a)
    assert_matrix(client, cast, reverse("credential_revoke", args=[credential.pk]),
                  DENIED, method="post")
    credential.refresh_from_db()
    assert credential.revoked_at is None and credential.is_active


def test_credential_list_search(client, cast):
    printer = _credential(cast.a, description="office printer")
    _credential(cast.a, description="web shop")
    client.force_login(cast.a.user)
    response = client.get(reverse("credential_list"), {"q": "PRINTER"})
    assert [c.pk for c in response.context["page"]] == [printer.pk]


def test_revoke_offers_to_hold_what_the_credential_queued(client, cast, django_capture_on_commit_callbacks):
    from unittest import mock

    credential = _credential(cast.a, mailbox=cast.a.mailbox)
    client.force_login(cast.a.user)
    page = client.get(reverse("credential_revoke", args=[credential.pk])).content.decode()
    assert 'name="hold"' in page and "has not delivered yet" in page
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, \
            django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("credential_revoke", args=[credential.pk]), {"hold": "on"}, follow=True)
    assert "is held for support" in response.content.decode()
    request = HoldRequest.objects.get()
    send_task.assert_called_once_with("relay.tasks.hold_queued", kwargs={
        "scope": "credential", "object_id": credential.pk, "reason": f"credential {credential.username} revoked",
        "request_id": request.pk})
