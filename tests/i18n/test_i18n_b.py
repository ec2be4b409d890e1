"""Domains, mailboxes, SMTP credentials, aliases and the CSV import in German: pages, form errors and notes follow
the browser's language, English stays English, and what machines read (the API, dns_check) stays English."""

import io
import json

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.models import Mailbox
from accounts.services.aliases import alias_create
from accounts.services.api_keys import api_key_create
from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from accounts.services.limits import limit_set
from tests.accounts.test_dnscheck import INCLUDE, MX
from tests.support.pages import page_text
from tests.support.permissions import mailbox_user

pytestmark = pytest.mark.django_db
DE = {"HTTP_ACCEPT_LANGUAGE": "de"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _note(response) -> str:
    """The note the response added (the last one: notes of redirects not followed before it are still queued)."""
    return list(get_messages(response.wsgi_request))[-1].message


# --- pages ---------------------------------------------------------------------------------------------------


def test_domain_page_in_german_with_its_records_dkim_state_and_forms(client, cast):
    page = page_text(client, reverse("domain_detail", args=[cast.a.domain.pk]), "de", user=cast.a.user)
    for german in ("Zu veröffentlichende Einträge", "Jetzt prüfen", "Im DNS gefunden", "Inhaberschaft",
                   "nicht geprüft", "DKIM signiert nicht", "ihr DKIM-Eintrag wurde noch nicht geprüft",
                   "Postfach anlegen", "Catch-all speichern", "Alias-Domain von", "SMTP-Zugangsdaten anlegen",
                   "Domain löschen", "Host des MX-Eintrags kopieren", ">bestätigt</span>"):
        assert german in page, german
    for english in ("Records to publish", "Check now", "not signing", "has not been checked yet", "ownership",
                    ">unchecked<", "Create a mailbox", "Delete domain"):
        assert english not in page, english
    # Protocol text is not translated: the values to publish and the record types.
    assert "v=DKIM1; k=rsa; p=" in page and ">TXT<" in page


def test_domain_page_in_english_is_unchanged(client, cast):
    page = page_text(client, reverse("domain_detail", args=[cast.a.domain.pk]), "en", user=cast.a.user)
    for english in ("Records to publish", "Check now", "DKIM not signing", "its DKIM record has not been checked yet",
                    "ownership", ">unchecked<", "Create a mailbox", "Save catch-all", "Delete domain"):
        assert english in page, english
    assert "Zu veröffentlichende" not in page and "Jetzt prüfen" not in page


def test_list_pages_in_german(client, cast):
    alias_create(actor=None, domain=cast.a.domain, local_part="sales", destinations=["info@alpha.test"])
    credential_create(actor=None, domain=cast.a.domain, description="Webshop")
    pages = {
        "domain_list": ("Domain hinzufügen", "Domain suchen", "DNS geprüft", ">bestätigt</span>"),
        "mailbox_list": ("Postfach anlegen", "Adresse suchen", "Anzeigename", "aktiviert", ">an</span>"),
        "alias_list": ("Alias anlegen", "Alias suchen", "Zustellung an", "aktiviert"),
        "credential_list": ("SMTP-Zugangsdaten anlegen", "Erlaubt von", ">beliebig<", "Widerrufen", ">aktiv</span>"),
        "bulk": ("Import und Export", "Postfächer exportieren (CSV)", "Inhalt der Datei", "Vorschau der Änderungen"),
    }
    for name, german in pages.items():
        page = page_text(client, reverse(name), "de", user=cast.a.user)
        for text in german:
            assert text in page, (name, text)
    assert "Add a domain" not in page_text(client, reverse("domain_list"), "de", user=cast.a.user)
    assert "Allowed from" not in page_text(client, reverse("credential_list"), "de", user=cast.a.user)


def test_mailbox_pages_in_german_with_the_lazy_password_help(client, cast, settings):
    settings.MAILBOX_PASSWORD_MIN_LENGTH = 12
    mailbox = cast.a.mailbox
    edit = page_text(client, reverse("mailbox_edit", args=[mailbox.pk]), "de", user=cast.a.user)
    for german in ("SMTP-Zugang ausschalten", "Mailprogramme können mit", "Speicherplatz (MB)", "Postfach löschen",
                   "Weiterleitung", "SMTP-Zugangsdaten für diese Adresse"):
        assert german in edit, german
    add = page_text(client, reverse("mailbox_add", args=[cast.a.domain.pk]), "de", user=cast.a.user)
    # The help is written when the page is, in its language, with the length as configured then.
    assert "Neues Postfach bei alpha.test" in add and "Mindestens 12 Zeichen, nicht nur Ziffern" in add
    assert "At least" not in add
    english = page_text(client, reverse("mailbox_add", args=[cast.a.domain.pk]), "en", user=cast.a.user)
    assert "At least 12 characters" in english


def test_app_passwords_of_a_mailbox_owner_in_german(client, cast):
    page = page_text(client, reverse("credential_list"), "de", user=mailbox_user(cast.a.mailbox))
    assert "<h1>App-Passwörter</h1>" in page and "App-Passwort anlegen" in page
    assert "<h1>App passwords</h1>" not in page and "Create an app password" not in page


# --- form errors and notes -----------------------------------------------------------------------------------


def test_domain_form_errors_and_failure_note_in_german(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("domain_add"), {"name": "localhost"}, **DE)
    page = response.content.decode()
    assert "„localhost“ ist kein gültiger Domainname: Er braucht mindestens zwei Teile" in page
    assert "Domainname" in page and "Domain name" not in page
    assert _note(response) == "Die Domain wurde nicht hinzugefügt; siehe die Fehler unten."


def test_a_service_refusal_is_german_next_to_its_field(client, cast):
    client.force_login(cast.a.user)
    data = {"local_part": "info", "password": "x", "password2": "y", "quota_mb": 10}
    page = client.post(reverse("mailbox_add", args=[cast.a.domain.pk]), data, **DE).content.decode()
    assert "Die beiden Passwörter stimmen nicht überein." in page and "Verwenden Sie mindestens" in page
    page = client.post(reverse("alias_add", args=[cast.a.domain.pk]),
                       {"local_part": "info", "destinations": "nobody@alpha.test", "is_enabled": "on"},
                       **DE).content.decode()
    assert "Es gibt kein Postfach und keinen Alias nobody@alpha.test." in page


def test_notes_after_a_change_in_german_and_in_english(client, cast):
    client.force_login(cast.a.user)
    data = {"local_part": "sales", "destinations": "info@alpha.test", "is_enabled": "on"}
    response = client.post(reverse("alias_add", args=[cast.a.domain.pk]), data, **DE)
    assert _note(response) == "Der Alias sales@alpha.test wurde angelegt."
    shown = client.get(response["Location"], **DE).content.decode()
    assert "Der Alias sales@alpha.test wurde angelegt." in shown
    mailbox = cast.a.mailbox
    response = client.post(reverse("mailbox_smtp", args=[mailbox.pk]), {"enabled": "0"}, **DE)
    assert _note(response) == "Der SMTP-Zugang für info@alpha.test ist aus."
    response = client.post(reverse("mailbox_smtp", args=[mailbox.pk]), {"enabled": "1"}, **EN)
    assert _note(response) == "SMTP access is on: info@alpha.test can now send with its address and password."


def test_revoking_a_credential_says_so_in_german(client, cast):
    new = credential_create(actor=None, domain=cast.a.domain, description="Drucker")
    client.force_login(cast.a.user)
    page = client.get(reverse("credential_revoke", args=[new.credential.pk]), **DE).content.decode()
    assert f"{new.credential.username} widerrufen?" in page and "Was diese Zugangsdaten verwendet (Drucker)" in page
    response = client.post(reverse("credential_revoke", args=[new.credential.pk]), {"hold": "on"}, **DE)
    assert _note(response) == (f"{new.credential.username} wurde widerrufen; eine Anmeldung ist nicht mehr möglich. "
                               "Was damit eingereiht und noch nicht zugestellt wurde, wird für den Support "
                               "zurückgehalten.")


def test_import_preview_and_refusals_in_german_with_plurals(client, cast):
    client.force_login(cast.a.user)
    text = "address,display_name,quota_mb,smtp_enabled,password\r\nanna@alpha.test,Anna,200,yes,\r\n" \
           "bob@alpha.test,,100,vielleicht,\r\n"
    response = client.post(reverse("bulk"), {"kind": "mailboxes", "text": text, "import": "1"}, **DE)
    page = response.content.decode()
    assert _note(response) == "Es wurde nichts importiert: 1 Zeile ist zuerst zu korrigieren."
    assert "1 Zeile würde abgelehnt, daher wurde keine Zeile geschrieben." in page
    assert "smtp_enabled muss yes oder no sein, nicht „vielleicht“." in page
    assert "2 Zeilen: 1 anzulegen, 0 zu ändern, 0 unverändert, 1 abgelehnt." in page
    ok = "address,display_name,quota_mb,smtp_enabled,password\r\nanna@alpha.test,Anna,200,yes,\r\n" \
         "bob@alpha.test,,100,no,\r\n"
    page = client.post(reverse("bulk"), {"kind": "mailboxes", "text": ok, "preview": "1"}, **DE).content.decode()
    assert "Vorschau: Es wurde nichts geschrieben" in page and "Diese 2 Zeilen importieren" in page
    assert "Postfach anna@alpha.test angelegt (200 MB, SMTP an, Passwort erzeugt)" in page
    assert not Mailbox.objects.filter(local_part="anna").exists()


def test_check_now_names_what_is_missing_in_german(client, cast, dns_server, settings):
    settings.MAIL_MX_HOST, settings.SPF_INCLUDE = MX, INCLUDE
    dns_server(txt=["unrelated.test,v=spf1 -all"], local=["test"])
    client.force_login(cast.a.user)
    response = client.post(reverse("domain_check", args=[cast.a.domain.pk]), **DE)
    assert _note(response) == "Nicht gefunden: MX, SPF, DKIM, DMARC."
    page = client.get(reverse("domain_detail", args=[cast.a.domain.pk]), **DE).content.decode()
    assert ">fehlt</span>" in page and "ihr DKIM-Eintrag wurde bei der letzten Prüfung nicht gefunden" in page


def test_limit_refusals_name_the_limit_in_the_active_language(cast):
    customer = cast.a.customer
    limit_set(actor=None, obj=customer, changes={"send_per_hour": 100})
    for language, text in (("de", "Der Tarif erlaubt 100 Empfänger pro Stunde; eine Domain kann nicht mehr haben."),
                           ("en", "The plan allows 100 recipients per hour; a domain cannot have more.")):
        with translation.override(language), pytest.raises(ValidationError) as refused:
            limit_set(actor=None, obj=cast.a.domain, changes={"send_per_hour": 500})
        assert refused.value.message_dict["send_per_hour"] == [text]


# --- what machines read stays English ------------------------------------------------------------------------


def test_api_and_dns_check_keep_the_english_record_labels_and_dkim_text(cast, dns_server, settings):
    settings.MAIL_MX_HOST, settings.SPF_INCLUDE = MX, INCLUDE
    dns_server(txt=["unrelated.test,v=spf1 -all"], local=["test"])
    domain = domain_create(actor=None, customer=cast.a.customer, name="api-i18n.test")
    key = api_key_create(actor=None, user=cast.a.user, name="billing")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key.secret}")
    body = api.get(f"/api/v1/domains/{domain.pk}/", **DE).json()
    assert body["dkim"]["text"].startswith("Mail from this domain is not DKIM-signed yet")
    assert {r["status"] for r in body["records"]} == {"unchecked"}
    with translation.override("de"):
        out = io.StringIO()
        call_command("dns_check", "alpha.test", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["records"][0]["label"] == "ownership"
    assert result["dkim"]["text"].startswith("Mail from this domain is not DKIM-signed yet: its DKIM record was not "
                                             "found at the last check")
