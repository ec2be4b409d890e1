"""A new secret is shown once, on the page its creation redirects to (post/redirect/get): a reload shows no secret
and creates nothing, a resubmitted form is a fresh creation the user asked for, never a silent one."""

import pytest
from django.urls import reverse

from accounts import hashing
from accounts.models import ApiKey, SmtpCredential, WebhookEndpoint
from tests.support.permissions import mailbox_user

pytestmark = pytest.mark.django_db


def _created(client, add_url, data):
    response = client.post(add_url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    first = client.get(response["Location"])
    assert first.status_code == 200 and "no-store" in first["Cache-Control"]
    secret = first.context["secret"]
    assert secret and secret in first.content.decode()
    again = client.get(response["Location"])
    assert again.status_code == 200 and again.context["secret"] is None
    assert secret not in again.content.decode() and 'id="secret-gone"' in again.content.decode()
    assert not any(key.startswith("shown_once:") for key in client.session.keys()), "nothing kept after showing"
    return response["Location"], secret


def test_credential_creation_redirects_and_shows_the_secret_once(client, cast):
    client.force_login(cast.a.user)
    url, secret = _created(client, reverse("credential_add"), {"scope": f"d:{cast.a.domain.pk}",
                                                              "description": "printer"})
    [credential] = SmtpCredential.objects.filter(description="printer")
    assert url == reverse("credential_created", args=[credential.pk])
    assert hashing.check_hash(secret, credential.secret_hash)
    client.get(url)
    assert SmtpCredential.objects.filter(description="printer").count() == 1, "a reload creates nothing"


def test_a_mailbox_owner_gets_the_same(client, cast):
    client.force_login(mailbox_user(cast.a.mailbox))
    _created(client, reverse("credential_add"), {"scope": f"m:{cast.a.mailbox.pk}", "description": "phone"},
             )
    assert SmtpCredential.objects.filter(description="phone").count() == 1


def test_the_created_page_of_another_tenants_credential_is_404_and_shows_nothing(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("credential_add"), {"scope": f"d:{cast.a.domain.pk}", "description": "x"})
    client.force_login(cast.b.user)
    assert client.get(response["Location"]).status_code == 404


def test_a_secret_not_fetched_in_time_is_not_shown(client, cast, monkeypatch):
    from accounts.views import common

    client.force_login(cast.a.user)
    response = client.post(reverse("credential_add"), {"scope": f"d:{cast.a.domain.pk}", "description": "late"})
    monkeypatch.setattr(common, "SHOWN_ONCE_SECONDS", -1)
    assert client.get(response["Location"]).context["secret"] is None


def test_api_key_creation_redirects_and_shows_the_key_once(client, cast):
    client.force_login(cast.a.user)
    url, secret = _created(client, reverse("api_key_add"), {"name": "billing"})
    [key] = ApiKey.objects.filter(name="billing")
    assert url == reverse("api_key_created", args=[key.pk])
    assert f"Authorization: Bearer {secret}" not in client.get(url).content.decode()
    assert ApiKey.objects.filter(name="billing").count() == 1


def test_webhook_registration_redirects_and_shows_the_signing_secret_once(client, cast):
    client.force_login(cast.a.user)
    url, secret = _created(client, reverse("webhook_add"), {"url": "https://hooks.example.net/in",
                                                           "events": ["message.bounced"]})
    [endpoint] = WebhookEndpoint.objects.filter(url="https://hooks.example.net/in")
    assert url == reverse("webhook_created", args=[endpoint.pk])
    assert WebhookEndpoint.objects.filter(url="https://hooks.example.net/in").count() == 1


def test_recovery_codes_are_shown_once_after_a_redirect(client, cast, settings):
    from accounts.services import security
    from tests.support.signin import sign_in_verified

    sign_in_verified(client, cast.support)
    response = client.post(reverse("security:recovery_codes"))
    assert response.status_code == 302 and response.url == reverse("security:recovery_codes_shown")
    first = client.get(response.url)
    codes = first.context["codes"]
    assert len(codes) == security.RECOVERY_CODES and codes[0] in first.content.decode()
    assert "no-store" in first["Cache-Control"]
    again = client.get(response.url)
    assert again.context["codes"] is None and codes[0] not in again.content.decode()
    assert security.verify_code(cast.support, codes[0]) is not None, "a reload made no new codes"
