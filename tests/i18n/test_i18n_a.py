"""The frame, sign-in, security, password, client settings, API key and webhook pages speak the browser's language:
German when it asks for German, English otherwise (issue 21)."""

import time

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from accounts.models import ApiKey, User
from accounts.services.api_keys import api_key_create
from accounts.services.security import SEEN_KEY
from accounts.services.webhooks import webhook_endpoint_create
from tests.support.factories import PASSWORD
from tests.support.pages import page_text
from tests.support.permissions import mailbox_user

pytestmark = pytest.mark.django_db
DE = {"HTTP_ACCEPT_LANGUAGE": "de"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def test_customer_dashboard_and_navigation_in_german(client, cast):
    client.force_login(cast.a.user)
    body = page_text(client, reverse("dashboard"), "de")
    assert '<html lang="de"' in body
    for german in ("Tarifauslastung", "Zugewiesener Speicherplatz", "Domain hinzufügen", "SMTP-Zugangsdaten anlegen",
                   "Übersicht", "Postfächer", "Abmelden", "Zum Inhalt springen", "Hilfe:"):
        assert german in body, german
    for english in ("Plan usage", "Storage allocated", "Add a domain", "Sign out", "Skip to content"):
        assert english not in body, english
    # The usage bars: amounts in German, and only what the plan has left is said to be left.
    assert "100 MB von 10240 MB</span>" in body and 'aria-label="Postfächer: 1 von 50"' in body
    assert "frei" not in body and "The one usage bar" not in body


def test_customer_dashboard_stays_english_for_an_english_browser(client, cast):
    client.force_login(cast.a.user)
    body = page_text(client, reverse("dashboard"), "en")
    assert '<html lang="en"' in body
    for english in ("Plan usage", "Storage allocated", "Add a domain", "Create an SMTP credential", "Sign out"):
        assert english in body, english
    assert "100 MB of 10240 MB</span>" in body and 'aria-label="Mailboxes: 1 of 50"' in body
    assert "Tarifauslastung" not in body and "Abmelden" not in body


def test_sign_in_page_and_its_form_label_in_german(client, cast):
    body = page_text(client, reverse("login"), "de")
    assert "Benutzername oder Postfach-Adresse" in body and "Passwort vergessen?" in body
    assert "Postfach-Inhaber melden sich mit ihrer Adresse" in body
    assert "Username or mailbox address" not in body and "Forgot password?" not in body


def test_sign_in_throttle_refusal_in_german(client, cast, settings):
    settings.PANEL_LOGIN_MAX_FAILURES_PER_IP = 2
    for n in range(2):
        client.post(reverse("login"), {"username": f"nobody{n}", "password": "wrong"}, **DE)
    response = client.post(reverse("login"), {"username": cast.a.user.username, "password": "wrong"}, **DE)
    assert response.status_code == 429
    body = response.content.decode()
    assert "Zu viele fehlgeschlagene Anmeldungen von Ihrer Adresse." in body
    assert "Too many failed sign-ins" not in body


def test_security_page_in_german(client, cast):
    client.force_login(cast.a.user)
    body = page_text(client, reverse("security:page"), "de")
    assert "Zwei-Faktor-Anmeldung" in body and "Angemeldete Sitzungen" in body and "Einrichten" in body
    assert "Two-factor sign-in" not in body and "Signed-in sessions" not in body


def test_mailbox_owner_page_and_client_settings_in_german(client, cast):
    mailbox = cast.a.mailbox
    client.force_login(mailbox_user(mailbox))
    body = page_text(client, reverse("dashboard"), "de")
    assert "Mein Postfach" in body and "Mein Passwort ändern" in body and "App-Passwörter" in body
    assert "Change my password" not in body

    body = page_text(client, reverse("mailbox_settings", args=[mailbox.pk]), "de")
    assert "E-Mails senden (SMTP)" in body and "E-Mails lesen (IMAP)" in body
    assert "das Passwort des Postfachs" in body  # the hint the view passes
    assert 'id="smtp-port-starttls"' in body and " mit STARTTLS oder " in body
    assert "Sending mail (SMTP)" not in body and "the mailbox password" not in body


def test_api_key_form_error_and_failure_note_in_german(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("api_key_add"), {"name": "billing", "expires_at": "2001-01-01T00:00"}, **DE)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Der Ablaufzeitpunkt muss in der Zukunft liegen." in body
    assert "Der API-Schlüssel wurde nicht erstellt; siehe die Fehler unten." in body
    assert "Bitte korrigieren Sie Folgendes:" in body and "Erlaubte Netze" in body
    assert "The expiry must be in the future." not in body and "Please correct the following:" not in body
    assert not ApiKey.objects.filter(user=cast.a.user).exists()


def test_api_key_service_refusal_in_german(client, cast):
    api_key_create(actor=cast.a.user, user=cast.a.user, name="billing")
    client.force_login(cast.a.user)
    response = client.post(reverse("api_key_add"), {"name": "Billing"}, **DE)
    assert "Sie haben bereits einen Schlüssel namens „Billing“." in response.content.decode()


def test_api_key_revoked_flash_in_german(client, cast):
    new = api_key_create(actor=cast.a.user, user=cast.a.user, name="billing")
    client.force_login(cast.a.user)
    response = client.post(reverse("api_key_revoke", args=[new.api_key.pk]), follow=True, **DE)
    body = response.content.decode()
    assert "Der API-Schlüssel „billing“ wurde widerrufen; er funktioniert nicht mehr." in body
    assert "widerrufen" in body and "was revoked" not in body


def test_api_key_revoked_flash_stays_english(client, cast):
    new = api_key_create(actor=cast.a.user, user=cast.a.user, name="billing")
    client.force_login(cast.a.user)
    response = client.post(reverse("api_key_revoke", args=[new.api_key.pk]), follow=True, **EN)
    assert "The API key “billing” was revoked; it no longer works." in response.content.decode()


def test_webhook_pages_and_url_refusal_in_german(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("webhook_add"), {"url": "ftp://hooks.example/"}, **DE)
    body = response.content.decode()
    assert "Geben Sie eine http://- oder https://-URL ein." in body
    assert "Der Endpunkt wurde nicht registriert" in body and "Enter an http://" not in body

    webhook_endpoint_create(actor=cast.a.user, url="https://hooks.example/in")
    body = page_text(client, reverse("webhook_list"), "de")
    assert "Endpunkt registrieren" in body and "aktiv" in body and "Register an endpoint" not in body


def test_other_sessions_signed_out_flash_uses_the_german_plural(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("security:sessions_revoke_others"), follow=True, **DE)
    body = response.content.decode()
    assert "0 andere Sitzungen abgemeldet." in body and "signed out." not in body


def test_staff_home_counts_customers_in_german(client, cast):
    client.force_login(cast.reseller_a_admin)
    body = page_text(client, reverse("dashboard"), "de")
    assert "1 Kunde, den Sie betreuen." in body and "Kunden suchen" in body
    assert "you look after" not in body


def test_password_reset_request_page_in_german(client, cast):
    body = page_text(client, reverse("password_reset"), "de")
    assert "Passwort vergessen?" in body and "Link senden" in body and "Zurück zur Anmeldung" in body
    assert "Send the link" not in body


def test_idle_sign_out_note_in_german_with_its_plural(client, cast, settings):
    settings.PANEL_SESSION_IDLE_SECONDS = 3600
    response = client.post(reverse("login"), {"username": cast.a.user.username, "password": PASSWORD})
    assert response.status_code == 302
    session = client.session
    session[SEEN_KEY] = time.time() - 3605
    session.save()
    body = client.get(reverse("dashboard"), follow=True, **DE).content.decode()
    assert "Sie wurden nach 1 Stunde Inaktivität abgemeldet. Melden Sie sich erneut an." in body
    assert "of inactivity" not in body


def test_password_reset_mail_in_german():
    context = {"user": User(username="anna"), "site_name": "Panel", "protocol": "https", "domain": "panel.test",
               "uid": "MQ", "token": "abc-def"}
    with translation.override("de"):
        subject = render_to_string("accounts/password_reset/subject.txt", context).strip()
        body = render_to_string("accounts/password_reset/email.txt", context)
    assert subject == "Neues Passwort für Panel wählen"
    assert body.startswith("Hallo anna,\n\n")
    assert "Öffnen Sie diesen Link, um es zu wählen:\n\nhttps://panel.test/password-reset/MQ/abc-def/\n" in body
    assert "Hello" not in body and "expires after an hour" not in body
