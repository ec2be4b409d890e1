"""Which language the panel speaks: the browser's (Accept-Language, or the sign-in page's switcher) until a
signed-in user's own setting; that setting for every role, audited, kept across sign-out; and mail to a person in
that person's language."""

import email
import email.policy
import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry, User
from relay.delivery import quarantine
from relay.models import QueuedMessage
from tests.relay.panel.test_quarantine import held
from tests.support.factories import PASSWORD
from tests.support.pages import get_page, page_text
from tests.support.permissions import mailbox_user

pytestmark = pytest.mark.django_db

COOKIE = settings.LANGUAGE_COOKIE_NAME


def _lang(page: str) -> str:
    return re.search(r'<html lang="([\w-]+)"', page)[1]


def _set_language(user, code):
    User.objects.filter(pk=user.pk).update(language=code)


# --- the browser decides before sign-in --------------------------------------------------------------------------


def test_a_german_browser_gets_the_sign_in_page_in_german():
    response = get_page(Client(), reverse("login"), "de-DE,de;q=0.9,en;q=0.5")
    page = response.content.decode()
    assert _lang(page) == "de" and response["Content-Language"] == "de"
    assert '<label for="language-switcher">Sprache</label>' in page and ">Wechseln</button>" in page
    assert 'data-text-copied="Kopiert"' in page  # the script's words, in the page's language
    page = page_text(Client(), reverse("login"), "en-GB,en;q=0.9")
    assert _lang(page) == "en" and '<label for="language-switcher">Language</label>' in page
    assert "Sprache" not in page and 'data-text-copied="Copied"' in page


def test_the_switcher_is_a_labelled_form_to_set_language_that_comes_back():
    page = page_text(Client(), reverse("password_reset"), "en")
    assert f'action="{reverse("set_language")}"' in page and 'name="csrfmiddlewaretoken"' in page
    assert f'name="next" value="{reverse("password_reset")}"' in page
    assert '<select id="language-switcher" name="language">' in page
    assert '<option value="de" lang="de">Deutsch</option>' in page
    assert '<option value="en" lang="en" selected>English</option>' in page


def test_the_switcher_choice_wins_over_the_browser_and_needs_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("set_language"), {"language": "de", "next": "/login/"}).status_code == 403
    page_text(client, reverse("login"), "en")  # sets the CSRF cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(reverse("set_language"), {"language": "de", "next": "/login/",
                                                     "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == "/login/" and client.cookies[COOKIE].value == "de"
    page = page_text(client, reverse("login"), "en")
    assert _lang(page) == "de"


def test_signed_in_pages_have_no_switcher(client, cast):
    client.force_login(cast.a.user)
    page = page_text(client, reverse("dashboard"), "en")
    assert "language-switcher" not in page


# --- a signed-in user's own setting ------------------------------------------------------------------------------


def test_the_users_setting_wins_over_the_browser_both_ways(client, cast):
    _set_language(cast.a.user, "en")
    client.force_login(cast.a.user)
    response = get_page(client, reverse("security:page"), "de")
    page = response.content.decode()
    assert _lang(page) == "en" and response["Content-Language"] == "en"
    assert '<h2>Language</h2>' in page and "Sprache" not in page
    _set_language(cast.a.user, "de")
    response = get_page(client, reverse("security:page"), "en")
    page = response.content.decode()
    assert _lang(page) == "de" and response["Content-Language"] == "de" and "<h2>Sprache</h2>" in page
    assert response.cookies[COOKIE].value == "de"  # the cookie follows the setting


def test_no_setting_follows_the_browser(client, cast):
    client.force_login(cast.a.user)
    assert _lang(page_text(client, reverse("security:page"), "de")) == "de"
    assert _lang(page_text(client, reverse("security:page"), "en")) == "en"


def test_an_unknown_stored_language_falls_back_to_the_browser(client, cast):
    _set_language(cast.a.user, "xx")  # say, a language the site no longer ships
    client.force_login(cast.a.user)
    assert _lang(page_text(client, reverse("security:page"), "de")) == "de"


def _roles(cast):
    return {"support": cast.support, "reseller": cast.reseller_a_admin, "customer": cast.a.user,
            "mailbox": mailbox_user(cast.a.mailbox)}


@pytest.mark.parametrize("role", ["support", "reseller", "customer", "mailbox"])
def test_every_role_sets_its_language_on_the_security_page_and_it_is_audited(client, cast, role):
    user = _roles(cast)[role]
    client.force_login(user)
    page = page_text(client, reverse("security:page"), "en")
    assert f'action="{reverse("account_language")}"' in page and '<select name="language"' in page
    assert '<option value="" selected>As my browser says</option>' in page

    response = client.post(reverse("account_language"), {"language": "de"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302 and response.url == reverse("security:page")
    assert response.cookies[COOKIE].value == "de"
    user.refresh_from_db()
    assert user.language == "de"
    entry = AuditEntry.objects.get(action="user.language")
    assert entry.actor == user and entry.before["language"] == "" and entry.after["language"] == "de"
    assert entry.client_ip == "127.0.0.1"
    page = page_text(client, reverse("security:page"), "en")
    assert "Das Panel wird jetzt in der gewählten Sprache angezeigt." in page  # the note, in the new language
    assert '<option value="de" selected>Deutsch</option>' in page

    # The same choice again changes nothing and writes nothing.
    client.post(reverse("account_language"), {"language": "de"})
    assert AuditEntry.objects.filter(action="user.language").count() == 1


def test_a_mailbox_owners_change_is_in_its_customers_audit_log(client, cast):
    client.force_login(mailbox_user(cast.a.mailbox))
    client.post(reverse("account_language"), {"language": "de"})
    entry = AuditEntry.objects.get(action="user.language")
    assert entry.customer == cast.a.customer and entry.after["username"] == f"mailbox:{cast.a.mailbox.pk}"


def test_back_to_the_browser_clears_the_setting_and_the_cookie(client, cast):
    _set_language(cast.a.user, "de")
    client.force_login(cast.a.user)
    response = client.post(reverse("account_language"), {"language": ""})
    assert response.status_code == 302 and response.cookies[COOKIE].value == "" \
        and response.cookies[COOKIE]["max-age"] == 0
    cast.a.user.refresh_from_db()
    assert cast.a.user.language == ""
    assert _lang(page_text(client, reverse("security:page"), "en")) == "en"


def test_a_language_the_site_does_not_ship_is_refused_in_the_users_language(client, cast):
    _set_language(cast.a.user, "de")
    client.force_login(cast.a.user)
    response = client.post(reverse("account_language"), {"language": "fr"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Die Sprache wurde nicht geändert; beachten Sie die Fehler unten." in page
    assert response.context["form"].errors["language"]  # Django's own "Select a valid choice", in German
    assert "Bitte eine gültige Auswahl treffen." in page
    cast.a.user.refresh_from_db()
    assert cast.a.user.language == "de" and not AuditEntry.objects.filter(action="user.language").exists()


def test_the_service_refuses_an_unknown_language(cast):
    from django.core.exceptions import ValidationError

    from accounts.services.preferences import user_language_set

    with pytest.raises(ValidationError):
        user_language_set(actor=cast.a.user, user=cast.a.user, language="fr")
    assert user_language_set(actor=cast.a.user, user=cast.a.user, language="de") is True
    assert User.objects.get(pk=cast.a.user.pk).language == "de" and cast.a.user.language == "de"


def test_the_setting_survives_signing_out_and_in(cast):
    _set_language(cast.a.user, "de")
    client = Client()
    response = client.post(reverse("login"), {"username": "alpha-user", "password": PASSWORD},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert _lang(page_text(client, reverse("dashboard"), "en")) == "de"
    client.post(reverse("logout"), HTTP_ACCEPT_LANGUAGE="en")
    page = page_text(client, reverse("login"), "en")  # signed out: the cookie still says German
    assert _lang(page) == "de" and '<label for="language-switcher">Sprache</label>' in page
    client.post(reverse("login"), {"username": "alpha-user", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="en")
    assert _lang(page_text(client, reverse("dashboard"), "en")) == "de"


def test_the_api_user_object_has_the_language(cast):
    from accounts.services.api_keys import api_key_create

    _set_language(cast.a.user, "de")
    secret = api_key_create(actor=None, user=cast.reseller_a_admin, name="billing").secret
    response = Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get(f"/api/v1/users/{cast.a.user.pk}/")
    assert response.status_code == 200 and response.json()["language"] == "de"


# --- mail to a person, in that person's language -----------------------------------------------------------------

RESET_TEMPLATES = {
    # The reset mail with one word of this catalogue: the language it was rendered in shows.
    "accounts/password_reset/subject.txt": "{% load i18n %}{% translate 'Language' %}",
    "accounts/password_reset/email.txt": "{% load i18n %}{% get_current_language as code %}{{ code }}: "
                                         "{% url 'password_reset_confirm' uidb64=uid token=token %}",
}


@pytest.fixture
def reset_mail(settings):
    templates = [dict(settings.TEMPLATES[0])]
    templates[0]["OPTIONS"] = dict(templates[0]["OPTIONS"], loaders=[
        ("django.template.loaders.locmem.Loader", RESET_TEMPLATES),
        "django.template.loaders.filesystem.Loader", "django.template.loaders.app_directories.Loader"])
    templates[0]["APP_DIRS"] = False
    settings.TEMPLATES = templates
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.mark.parametrize(("setting", "subject", "body"), [("de", "Sprache", "de: "), ("en", "Language", "en: "),
                                                           ("", "Language", "en: ")])
def test_the_password_reset_mail_is_in_the_users_language_not_the_askers(client, cast, reset_mail, mailoutbox,
                                                                         setting, subject, body):
    User.objects.filter(pk=cast.a.user.pk).update(email="anna@alpha.test", language=setting)
    # Asked for from a German browser: the mail is still in the user's own language (or the site's default).
    response = client.post(reverse("password_reset"), {"email": "anna@alpha.test"}, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 302
    [mail] = mailoutbox
    assert mail.to == ["anna@alpha.test"] and mail.subject == subject and mail.body.startswith(body)


def test_the_reset_mail_through_the_outbound_queue_says_its_language(client, cast, settings, monkeypatch):
    settings.EMAIL_BACKEND = "relay.outbox.QueueEmailBackend"
    monkeypatch.setattr("relay.outbox.enqueue", lambda ids: None)
    User.objects.filter(pk=cast.a.user.pk).update(email="anna@alpha.test", language="de")
    User.objects.filter(pk=cast.b.user.pk).update(email="bob@bravo.test")
    client.post(reverse("password_reset"), {"email": "anna@alpha.test"}, HTTP_ACCEPT_LANGUAGE="en")
    client.post(reverse("password_reset"), {"email": "bob@bravo.test"}, HTTP_ACCEPT_LANGUAGE="de")
    stored = {m.recipients.get().address: email.message_from_bytes(bytes(m.content), policy=email.policy.default)
              for m in QueuedMessage.objects.all()}
    assert stored["anna@alpha.test"]["Content-Language"] == "de"
    assert stored["bob@bravo.test"]["Content-Language"] == "en"  # no setting: the site's default, not the asker's


@pytest.fixture
def no_handover(monkeypatch):
    monkeypatch.setattr("relay.delivery.quarantine.enqueue", lambda ids: None)


def _digest_for(mailbox) -> email.message.EmailMessage:
    digest = QueuedMessage.objects.get(recipients__address=mailbox.address, mail_from="")
    return email.message_from_bytes(bytes(digest.content), policy=email.policy.default)


def test_the_quarantine_digest_is_in_the_mailbox_owners_language(cast, no_handover):
    _set_language(mailbox_user(cast.a.mailbox), "de")
    held(cast.a), held(cast.a)
    assert quarantine.send_digests() == 1
    mail = _digest_for(cast.a.mailbox)
    assert mail["Subject"] == "2 Nachrichten an info@alpha.test als Spam zurückgehalten"
    assert mail["Content-Language"] == "de"


def test_a_digest_to_a_mailbox_without_a_panel_user_takes_its_customers_language(cast, no_handover):
    _set_language(cast.a.user, "de")
    held(cast.a), held(cast.b)
    assert quarantine.send_digests() == 2
    mail = _digest_for(cast.a.mailbox)
    assert mail["Subject"] == "1 Nachricht an info@alpha.test als Spam zurückgehalten"
    assert mail["Content-Language"] == "de"
    other = _digest_for(cast.b.mailbox)  # nobody at Bravo chose a language: the site's default
    assert other["Subject"] == "1 message held as spam for info@bravo.test" and other["Content-Language"] == "en"


def test_the_owners_own_choice_beats_the_customers(cast, no_handover):
    _set_language(cast.a.user, "de")
    _set_language(mailbox_user(cast.a.mailbox), "en")
    held(cast.a)
    quarantine.send_digests()
    assert _digest_for(cast.a.mailbox)["Subject"] == "1 message held as spam for info@alpha.test"
