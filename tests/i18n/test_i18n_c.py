"""The reseller console, the plan and spam pages, filters, the support console and the audit log's words speak the
reader's language: German for a browser that asks for it, English otherwise; an audit row is stored as it was and
only its words are translated when it is shown."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.audit_words import changes, headline, row_for
from accounts.models import AuditEntry
from accounts.services.limits import limit_set
from accounts.services.mailboxes import mailbox_update
from tests.support.pages import page_text
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db


def _client(user, language: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def _support(cast, language: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    sign_in_verified(client, cast.support)
    return client


def test_reseller_console_is_german_for_a_german_browser(cast):
    client = _client(cast.reseller_a_admin, "de")
    home = page_text(client, reverse("reseller:home"))
    assert "Ihr Pool" in home and "Reseller-Konsole" in home and "Tarifvorlagen" in home
    assert "1 in Gebrauch" in home and "<strong>Speicherplatz (MB)</strong>" in home  # the pool's own bars
    assert "Your pool" not in home and "Plan templates" not in home
    customers = page_text(client, reverse("reseller:customers"))
    assert "1 Kunde." in customers and "Kunden nach Namen suchen" in customers and "pro Seite." in customers
    assert "Find a customer by name" not in customers
    customer = page_text(client, reverse("reseller:customer", args=[cast.a.customer.pk]))
    assert "Tarif speichern" in customer and "Alpha sperren" in customer and "Spamfilter von Alpha" in customer
    assert "Save plan" not in customer
    # The plan form's labels are the form's own, translated.
    assert "Kundenname" in page_text(client, reverse("reseller:customer_create"))


def test_reseller_console_stays_english_for_an_english_browser(cast):
    client = _client(cast.reseller_a_admin, "en")
    home = page_text(client, reverse("reseller:home"))
    assert "Your pool" in home and "Plan templates" in home and "Ihr Pool" not in home
    assert "1 in use" in home and "<strong>Storage (MB)</strong>" in home
    customers = page_text(client, reverse("reseller:customers"))
    assert "1 customer." in customers and "per page." in customers and "Kunde" not in customers


def test_a_form_error_from_the_service_is_german(cast):
    client = _client(cast.reseller_a_admin, "de")
    response = client.post(reverse("reseller:branding"), {"brand_color": "#ffff00"})
    body = response.content.decode()
    # The contrast refusal, with its numbers written the German way.
    assert "Weiße Schrift auf #ffff00 hat ein Kontrastverhältnis von 1,0:1" in body and "4,5:1" in body
    assert "White text on" not in body
    assert "Das Branding wurde nicht gespeichert; siehe die Fehler unten." in body


def test_a_flash_message_is_german(cast):
    client = _client(cast.a.user, "de")
    response = client.post(reverse("spam_settings", args=[cast.a.customer.pk]),
                           {"mark_score": "4", "reject_score": "12"}, follow=True)
    body = response.content.decode()
    assert "Die Spam-Scores sind gespeichert." in body and "The spam scores are saved." not in body
    assert "Scores für alle Ihre Domains" in body and "Erlaubte und blockierte Absender" in body


def test_customer_pages_plan_filters_and_auto_reply_are_german(cast):
    client = _client(cast.a.user, "de")
    plan = page_text(client, reverse("plan:home"))
    assert "Ihr Tarif" in plan and "An Postfächer vergebener Speicherplatz" in plan and "Your plan" not in plan
    filters = page_text(client, reverse("mailbox_filters", args=[cast.a.mailbox.pk]))
    assert "Filter von info@alpha.test" in filters and "Einfache Regeln" in filters
    assert "in Ordner verschieben" in filters and "Save filters" not in filters
    reply = page_text(client, reverse("mailbox_auto_reply", args=[cast.a.mailbox.pk]))
    assert "Automatische Antwort von info@alpha.test" in reply and "Automatische Antworten senden" in reply


def test_support_console_is_german(cast):
    client = _support(cast, "de")
    search = page_text(client, reverse("support:home"), q="alpha")
    assert "Support-Konsole" in search and "<h2>Kunden</h2>" in search and "Benutzername von Zugangsdaten" in search
    assert "Support console" not in search and "<h2>Customers</h2>" not in search
    page = page_text(client, reverse("support:customer", args=[cast.a.customer.pk]))
    assert "Tariflimits ändern" in page and "Letzte Nachrichten" in page and "Change plan limits" not in page
    status = page_text(client, reverse("support:mailbox_status", args=[cast.a.mailbox.pk]))
    assert "Postfach info@alpha.test sperren" in status


def test_support_console_stays_english(cast):
    client = _support(cast, "en")
    search = page_text(client, reverse("support:home"), q="alpha")
    assert "Support console" in search and "<h2>Customers</h2>" in search
    status = page_text(client, reverse("support:mailbox_status", args=[cast.a.mailbox.pk]))
    assert "Suspend mailbox info@alpha.test" in status


def test_an_audit_row_is_stored_as_it_was_and_shown_in_the_readers_language(cast):
    limit_set(actor=cast.support, obj=cast.a.customer, changes={"send_per_day": 500}, reason="Ticket 12")
    mailbox_update(actor=cast.a.user, mailbox=cast.a.mailbox, smtp_enabled=False)
    limits = AuditEntry.objects.get(action="customer.limits")
    switch = AuditEntry.objects.get(action="mailbox.update")
    # What is stored holds field names and raw values, in no language.
    assert limits.after == {"send_per_day": 500} and limits.before == {"send_per_day": None}
    assert switch.before["smtp_enabled"] is True and switch.after["smtp_enabled"] is False
    with translation.override("de"):
        assert changes(limits) == ["Sendelimit pro Tag: kein eigenes Limit → 500"]
        assert headline(limits) == "Kunde: Limits geändert"
        assert changes(switch) == ["SMTP-Zugang: ausgeschaltet"]
        assert row_for(limits, cast.a.user).who == "Support"
    with translation.override("en"):
        assert changes(limits) == ["Sending limit per day no limit of its own → 500"]
        assert headline(limits) == "Customer limits changed"
        assert changes(switch) == ["SMTP access turned off"]
    # The same rows on the support console's customer page, read by a German and an English browser.
    support, url = _support(cast, "de"), reverse("support:customer", args=[cast.a.customer.pk])
    german = page_text(support, url)
    assert "Sendelimit pro Tag: kein eigenes Limit → 500" in german and "— Grund: Ticket 12" in german
    english = page_text(support, url, "en")
    assert "Sending limit per day no limit of its own → 500" in english and "— reason: Ticket 12" in english
    limits.refresh_from_db()
    assert limits.after == {"send_per_day": 500} and limits.reason == "Ticket 12"
