import pytest
from django.urls import reverse

from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create, mailbox_update
from tests.support.permissions import MANAGE, assert_matrix, mailbox_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def relay(settings):
    settings.RELAY_HOSTNAME, settings.IMAP_HOSTNAME = "smtp.provider.test", "imap.provider.test"
    settings.RELAY_PUBLIC_SUBMISSION_PORT, settings.RELAY_PUBLIC_SMTPS_PORT = 587, 465


def test_mailbox_settings_page_has_host_ports_username_and_security(client, cast, relay):
    client.force_login(cast.a.user)
    response = client.get(reverse("mailbox_settings", args=[cast.a.mailbox.pk]))
    body = response.content.decode()
    assert '<dd class="mono" id="smtp-host">smtp.provider.test</dd>' in body
    assert '<span id="smtp-port-starttls">587</span> with STARTTLS' in body
    assert '<span id="smtp-port-ssl">465</span> with SSL/TLS' in body
    assert '<dd class="mono" id="smtp-username">info@alpha.test</dd>' in body
    assert "imap.provider.test" in body and reverse("mailbox_mobileconfig", args=[cast.a.mailbox.pk]) in body


def test_settings_page_warns_when_smtp_access_is_off(client, cast, relay):
    mailbox_update(actor=None, mailbox=cast.a.mailbox, smtp_enabled=False)
    client.force_login(cast.a.user)
    assert "SMTP access is off" in client.get(reverse("mailbox_settings", args=[cast.a.mailbox.pk])).content.decode()


def test_credential_settings_page_uses_the_credential_username(client, cast, relay):
    credential = credential_create(actor=None, domain=cast.a.domain, description="printer").credential
    client.force_login(cast.a.user)
    body = client.get(reverse("credential_settings", args=[credential.pk])).content.decode()
    assert f'<dd class="mono" id="smtp-username">{credential.username}</dd>' in body
    assert "any address @alpha.test" in body and "smtp.provider.test" in body
    assert "mobileconfig" not in body  # a domain-wide credential has no mailbox to set up on a phone


def test_settings_pages_show_the_resellers_brand(client, cast, relay):
    cast.reseller_a.panel_title, cast.reseller_a.support_email = "Alpha Hosting", "help@alpha-hosting.test"
    cast.reseller_a.save()
    client.force_login(cast.a.user)
    body = client.get(reverse("mailbox_settings", args=[cast.a.mailbox.pk])).content.decode()
    assert "Alpha Hosting" in body and "help@alpha-hosting.test" in body
    client.force_login(cast.direct.user)
    body = client.get(reverse("mailbox_settings", args=[cast.direct.mailbox.pk])).content.decode()
    assert "Alpha Hosting" not in body and "support@example.net" in body


def test_mailbox_settings_permission_matrix(client, cast):
    assert_matrix(client, cast, reverse("mailbox_settings", args=[cast.a.mailbox.pk]), {**MANAGE, "mailbox_owner": 200})


def test_mailbox_owner_sees_only_their_own_settings(client, cast):
    other = mailbox_create(actor=None, domain=cast.a.domain, local_part="sales", password="a fine secret!",
                           quota_mb=10)
    client.force_login(mailbox_user(cast.a.mailbox))
    assert client.get(reverse("mailbox_settings", args=[other.pk])).status_code == 404


def test_credential_settings_show_its_limits_and_last_use(client, cast, relay):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import SmtpCredential

    credential = credential_create(actor=None, domain=cast.a.domain, allowed_networks="192.0.2.0/24",
                                   expires_at=timezone.now() + timedelta(days=2)).credential
    SmtpCredential.objects.filter(pk=credential.pk).update(last_used_at=timezone.now(), last_used_ip="192.0.2.80")
    client.force_login(cast.a.user)
    body = client.get(reverse("credential_settings", args=[credential.pk])).content.decode()
    assert "192.0.2.0/24" in body and "from 192.0.2.80" in body and "never" not in body


def test_settings_page_warns_while_the_domain_cannot_send(client, cast, relay):
    pending = domain_create(actor=None, customer=cast.a.customer, name="later.test")
    mailbox = mailbox_create(actor=None, domain=pending, local_part="x", password="fine password!", quota_mb=1)
    client.force_login(cast.a.user)
    body = client.get(reverse("mailbox_settings", args=[mailbox.pk])).content.decode()
    assert "later.test is not verified yet" in body
    body = client.get(reverse("mailbox_settings", args=[cast.a.mailbox.pk])).content.decode()
    assert "not verified yet" not in body and "is suspended" not in body
