import pytest
from django.urls import reverse

from accounts import hashing
from accounts.models import AuditEntry, Mailbox
from accounts.services.mailboxes import mailbox_create
from tests.support.factories import PASSWORD
from tests.support.permissions import DENIED, MANAGE, assert_matrix, assert_shows_only, mailbox_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a much better secret"


def _create(client, cast, **overrides):
    data = {"local_part": "Sales", "display_name": "Sales team", "password": NEW_PASSWORD,
            "password2": NEW_PASSWORD, "quota_mb": 200, **overrides}
    return client.post(reverse("mailbox_add", args=[cast.a.domain.pk]), data, REMOTE_ADDR="192.0.2.44")


def test_mailbox_pages_permission_matrix(client, cast):
    mailbox = cast.a.mailbox
    for name in ("mailbox_edit", "mailbox_password", "mailbox_delete"):
        assert_matrix(client, cast, reverse(name, args=[mailbox.pk]), MANAGE)
    assert_matrix(client, cast, reverse("mailbox_add", args=[cast.a.domain.pk]), MANAGE)
    assert_matrix(client, cast, reverse("mailbox_list"), {who: 200 for who in MANAGE})


def test_mailbox_list_shows_no_foreign_mailboxes(client, cast):
    url = reverse("mailbox_list")
    assert_shows_only(client, cast.a.user, url, ("info@alpha.test",), ("bravo.test", "direct.test"))
    assert_shows_only(client, cast.reseller_a_admin, url, ("info@alpha.test",), ("bravo.test", "direct.test"))
    assert_shows_only(client, mailbox_user(cast.a.mailbox), url, (), ("info@alpha.test",))


def test_create_mailbox_stores_a_dovecot_hash_and_audits(client, cast):
    client.force_login(cast.a.user)
    response = _create(client, cast, smtp_enabled="on")
    mailbox = Mailbox.objects.get(domain=cast.a.domain, local_part="sales")
    assert response.status_code == 302 and response["Location"] == reverse("mailbox_edit", args=[mailbox.pk])
    assert mailbox.quota_mb == 200 and mailbox.smtp_enabled and mailbox.display_name == "Sales team"
    assert mailbox.password_hash.startswith("{ARGON2ID}") and hashing.check_hash(NEW_PASSWORD, mailbox.password_hash)
    entry = AuditEntry.objects.get(action="mailbox.create", object_id=str(mailbox.pk))
    assert entry.client_ip == "192.0.2.44" and entry.actor == cast.a.user
    assert NEW_PASSWORD not in str(entry.after)
    assert "Mailbox sales@alpha.test was created" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("overrides, field, error", [
    ({"password": "short", "password2": "short"}, "password", "at least 10 characters"),
    ({"password": "12345678901", "password2": "12345678901"}, "password", "more than digits"),
    ({"password": "sales-is-my-password", "password2": "sales-is-my-password"}, "password", "address in the password"),
    ({"password2": "something else"}, "password2", "The two passwords differ"),
    ({"local_part": "no spaces"}, "local_part", "Use letters, digits"),
    ({"local_part": "info"}, "local_part", "already exists"),
    ({"quota_mb": 0}, "quota_mb", "greater than or equal to 1"),
])
def test_create_mailbox_shows_errors_next_to_the_fields(client, cast, overrides, field, error):
    client.force_login(cast.a.user)
    before = Mailbox.objects.count()
    response = _create(client, cast, **overrides)
    assert response.status_code == 200
    assert any(error in e for e in response.context["form"].errors[field]), response.context["form"].errors
    assert "The mailbox was not created" in response.content.decode()
    assert Mailbox.objects.count() == before


def test_create_mailbox_enforces_the_plans_mailbox_limit(client, cast):
    cast.a.customer.max_mailboxes = 1
    cast.a.customer.save()
    client.force_login(cast.a.user)
    response = _create(client, cast)
    assert "Your plan allows 1 mailboxes" in response.context["form"].errors["local_part"][0]
    assert not Mailbox.objects.filter(local_part="sales").exists()


def test_create_mailbox_enforces_the_plans_storage(client, cast):
    cast.a.customer.max_storage_mb = 250  # 100 MB already allocated to info@
    cast.a.customer.save()
    client.force_login(cast.a.user)
    response = _create(client, cast, quota_mb=151)
    assert "150 MB of storage left" in response.context["form"].errors["quota_mb"][0]
    assert not Mailbox.objects.filter(local_part="sales").exists()


def test_create_mailbox_in_another_tenants_domain_is_404(client, cast):
    url = reverse("mailbox_add", args=[cast.a.domain.pk])
    data = {"local_part": "intruder", "password": NEW_PASSWORD, "password2": NEW_PASSWORD, "quota_mb": 10}
    assert_matrix(client, cast, url, DENIED, method="post", data=data)
    assert not Mailbox.objects.filter(local_part="intruder").exists()


def test_edit_mailbox_changes_quota_smtp_and_enabled_with_audit(client, cast):
    mailbox = cast.a.mailbox
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("mailbox_edit", args=[mailbox.pk]),
                           {"display_name": "Info desk", "quota_mb": 300}, follow=True)
    mailbox.refresh_from_db()
    assert (mailbox.display_name, mailbox.quota_mb, mailbox.is_active) == ("Info desk", 300, False)
    assert mailbox.smtp_enabled  # only its own switch changes SMTP access
    assert "info@alpha.test was saved" in response.content.decode()
    entry = AuditEntry.objects.get(action="mailbox.update", object_id=str(mailbox.pk))
    assert entry.before["quota_mb"] == 100 and entry.after["quota_mb"] == 300 and entry.actor == cast.reseller_a_admin


def test_edit_mailbox_quota_beyond_the_plan_is_an_error_and_changes_nothing(client, cast):
    cast.a.customer.max_storage_mb = 150
    cast.a.customer.save()
    client.force_login(cast.a.user)
    response = client.post(reverse("mailbox_edit", args=[cast.a.mailbox.pk]),
                           {"display_name": "x", "quota_mb": 151, "is_active": "on"})
    assert "150 MB of storage left" in response.context["form"].errors["quota_mb"][0]
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.quota_mb == 100 and cast.a.mailbox.display_name == ""


def test_edit_mailbox_of_another_tenant_is_404_and_changes_nothing(client, cast):
    data = {"quota_mb": 1, "is_active": ""}
    assert_matrix(client, cast, reverse("mailbox_edit", args=[cast.a.mailbox.pk]), DENIED, method="post", data=data)
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.quota_mb == 100 and cast.a.mailbox.is_active


def test_smtp_switch_turns_access_off_and_on(client, cast):
    mailbox = cast.a.mailbox
    client.force_login(cast.a.user)
    response = client.post(reverse("mailbox_smtp", args=[mailbox.pk]), {"enabled": "0"}, follow=True)
    mailbox.refresh_from_db()
    assert not mailbox.smtp_enabled and response.content.decode().count("SMTP access is off for") == 1
    response = client.post(reverse("mailbox_smtp", args=[mailbox.pk]), {"enabled": "1"}, HTTP_HX_REQUEST="true")
    mailbox.refresh_from_db()
    body = response.content.decode()
    assert mailbox.smtp_enabled and body.lstrip().startswith('<div id="smtp-access"') and "SMTP access is on" in body
    assert list(AuditEntry.objects.filter(action="mailbox.update", object_id=str(mailbox.pk))
                .values_list("after__smtp_enabled", flat=True).order_by("id")) == [False, True]


def test_smtp_switch_of_another_tenant_is_404(client, cast):
    url = reverse("mailbox_smtp", args=[cast.a.mailbox.pk])
    assert_matrix(client, cast, url, DENIED, method="post", data={"enabled": "0"})
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.smtp_enabled


def test_change_mailbox_password(client, cast):
    mailbox = cast.a.mailbox
    client.force_login(cast.a.user)
    response = client.post(reverse("mailbox_password", args=[mailbox.pk]), {"password": "short", "password2": "short"})
    assert "at least 10 characters" in response.context["form"].errors["password"][0]
    response = client.post(reverse("mailbox_password", args=[mailbox.pk]),
                           {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True)
    mailbox.refresh_from_db()
    assert hashing.check_hash(NEW_PASSWORD, mailbox.password_hash) and not hashing.check_hash(PASSWORD, mailbox.password_hash)
    assert "password of info@alpha.test was changed" in response.content.decode()
    assert AuditEntry.objects.filter(action="mailbox.password", object_id=str(mailbox.pk)).exists()


def test_change_password_of_another_tenants_mailbox_is_404(client, cast):
    data = {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert_matrix(client, cast, reverse("mailbox_password", args=[cast.a.mailbox.pk]), DENIED, method="post", data=data)
    cast.a.mailbox.refresh_from_db()
    assert hashing.check_hash(PASSWORD, cast.a.mailbox.password_hash)


def test_delete_mailbox_asks_then_deletes(client, cast):
    mailbox = cast.a.mailbox
    client.force_login(cast.support)
    assert "cannot be undone" in client.get(reverse("mailbox_delete", args=[mailbox.pk])).content.decode()
    response = client.post(reverse("mailbox_delete", args=[mailbox.pk]), follow=True)
    assert not Mailbox.objects.filter(pk=mailbox.pk).exists()
    assert "Mailbox info@alpha.test was deleted" in response.content.decode()
    entry = AuditEntry.objects.get(action="mailbox.delete", object_id=str(mailbox.pk))
    assert entry.actor == cast.support


def test_delete_mailbox_of_another_tenant_is_404(client, cast):
    assert_matrix(client, cast, reverse("mailbox_delete", args=[cast.a.mailbox.pk]), DENIED, method="post")
    assert Mailbox.objects.filter(pk=cast.a.mailbox.pk).exists()


def test_mailbox_list_search_by_address(client, cast):
    mailbox_create(actor=None, domain=cast.a.domain, local_part="sales", password=NEW_PASSWORD, quota_mb=10)
    client.force_login(cast.a.user)
    response = client.get(reverse("mailbox_list"), {"q": "SALES@alpha"})
    assert [m.address for m in response.context["page"]] == ["sales@alpha.test"]
    response = client.get(reverse("mailbox_list"), {"q": "info"})
    assert [m.address for m in response.context["page"]] == ["info@alpha.test"]
