"""Wherever the panel shows SMTP access, it says the relay refuses mail from a domain that is not verified yet."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from tests.support.factories import PASSWORD
from tests.support.permissions import mailbox_user
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db

REFUSED = "the relay refuses mail from it until it is"
SHORT = "refused until new.test is verified"


@pytest.fixture
def pending(cast):
    domain = domain_create(actor=None, customer=cast.a.customer, name="new.test")
    mailbox = mailbox_create(actor=None, domain=domain, local_part="anna", password=PASSWORD, quota_mb=10,
                             smtp_enabled=True)
    return domain, mailbox


def _body(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_mailbox_created_on_an_unverified_domain_does_not_say_clients_can_send(client, cast):
    domain = domain_create(actor=None, customer=cast.a.customer, name="new.test")
    client.force_login(cast.a.user)
    response = client.post(reverse("mailbox_add", args=[domain.pk]), {
        "local_part": "anna", "password": "Correct-Horse-42-battery", "password2": "Correct-Horse-42-battery",
        "quota_mb": 10, "smtp_enabled": "on"}, follow=True)
    body = response.content.decode()
    assert "Mailbox anna@new.test was created" in body, response.context.get("form") and response.context["form"].errors
    assert "Mail clients can send" not in body
    assert "once new.test is verified" in body and REFUSED in body


def test_switching_smtp_on_for_an_unverified_domain_warns(client, cast, pending):
    _, mailbox = pending
    mailbox.smtp_enabled = False
    mailbox.save()
    client.force_login(cast.a.user)
    response = client.post(reverse("mailbox_smtp", args=[mailbox.pk]), {"enabled": "1"})
    [message] = list(get_messages(response.wsgi_request))
    assert message.level_tag == "warning"
    assert "the relay refuses mail from anna@new.test until new.test is verified" in message.message
    htmx = client.post(reverse("mailbox_smtp", args=[mailbox.pk]), {"enabled": "1"}, HTTP_HX_REQUEST="true")
    assert "Mail clients can send" not in htmx.content.decode() and REFUSED in htmx.content.decode()


@pytest.mark.parametrize("page", ["mailbox_settings", "credential_settings", "mailbox_edit", "mailbox_list",
                                  "dashboard", "domain_detail", "credential_list"])
def test_every_customer_page_showing_smtp_access_says_it_is_refused_until_verified(client, cast, pending, page):
    domain, mailbox = pending
    credential = credential_create(actor=None, domain=domain, mailbox=mailbox).credential
    url = {"mailbox_settings": reverse("mailbox_settings", args=[mailbox.pk]),
           "credential_settings": reverse("credential_settings", args=[credential.pk]),
           "mailbox_edit": reverse("mailbox_edit", args=[mailbox.pk]),
           "mailbox_list": reverse("mailbox_list"), "dashboard": reverse("dashboard"),
           "credential_list": reverse("credential_list"),
           "domain_detail": reverse("domain_detail", args=[domain.pk])}[page]
    client.force_login(cast.a.user)
    body = _body(client, url)
    assert REFUSED in body or SHORT in body
    assert "Mail clients can send" not in body


def test_the_mailbox_owners_home_says_it_is_refused_until_verified(client, pending):
    _, mailbox = pending
    client.force_login(mailbox_user(mailbox))
    body = _body(client, reverse("dashboard"))
    assert REFUSED in body and SHORT in body


def test_the_support_console_says_it_is_refused_until_verified(cast, pending):
    support = Client()
    sign_in_verified(support, cast.support)
    body = _body(support, reverse("support:customer", args=[cast.a.customer.pk]))
    assert SHORT in body


def test_the_credential_created_page_says_it_is_refused_until_verified(client, cast, pending):
    domain, _ = pending
    client.force_login(cast.a.user)
    response = client.post(reverse("credential_add"), {"scope": f"d:{domain.pk}", "description": "printer"},
                           follow=True)
    body = response.content.decode()
    assert "Your new SMTP credential" in body and REFUSED in body


def test_a_verified_domain_shows_no_such_warning(client, cast):
    client.force_login(cast.a.user)
    for url in (reverse("mailbox_edit", args=[cast.a.mailbox.pk]),
                reverse("mailbox_settings", args=[cast.a.mailbox.pk]), reverse("mailbox_list")):
        body = _body(client, url)
        assert REFUSED not in body and "refused until" not in body
    assert "Mail clients can send" in _body(client, reverse("mailbox_edit", args=[cast.a.mailbox.pk]))
