"""The relay's panel pages (message log, message, quarantine, lockouts, smart host, sending chart), the quarantine
digest and the models' choice labels in German when the browser asks for it, and still in English otherwise;
what machines or the audit log read stays English."""

import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import AuditEntry, Status
from accounts.services.api_keys import api_key_create
from relay.delivery import quarantine
from relay.models import AuthLockout, QueuedMessage, Recipient
from tests.support.logdata import add_attempt, make_message
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db

DE = {"HTTP_ACCEPT_LANGUAGE": "de"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture(autouse=True)
def english_afterwards():
    # A request leaves its language active in the thread: the next test starts in the default one again.
    yield
    translation.deactivate()


def page(client, url, **headers) -> str:
    response = client.get(url, **headers)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def held(tenant, subject="Cheap watches") -> QueuedMessage:
    message = make_message(tenant, to=(tenant.mailbox.address,), state=QueuedMessage.State.QUARANTINED,
                           subject=subject, mail_from="offers@sender.example", via_mailbox=False,
                           direction=QueuedMessage.Direction.INBOUND, spam_score=20.0, spam_action="reject",
                           spam_symbols={"GTUBE": 0.0})
    Recipient.objects.filter(message=message).update(mailbox=tenant.mailbox)
    return message


def test_message_log_in_german_and_in_english(client, cast):
    make_message(cast.a, subject="Rechnung 42")
    client.force_login(cast.a.user)
    german = page(client, reverse("relay:message_list"), **DE)
    assert "<h1>Nachrichtenprotokoll</h1>" in german and "<th>Betreff</th>" in german
    assert ">Eingereiht</span>" in german and "<td>Ausgehend</td>" in german  # the models' choice labels
    assert "1 Nachricht" in german and "Jeder Status" in german  # a plural, and a form's choice
    assert "Message log" not in german and "Queued" not in german and "Any state" not in german
    english = page(client, reverse("relay:message_list"), **EN)
    assert "<h1>Message log</h1>" in english and ">Queued</span>" in english and "1 message" in english
    assert "Nachrichtenprotokoll" not in english and "Eingereiht" not in english


def test_message_log_form_error_in_german(client, cast):
    client.force_login(cast.a.user)
    german = page(client, reverse("relay:message_list") + "?date_from=2026-02-01&date_to=2026-01-01", **DE)
    assert "Das Enddatum liegt vor dem Startdatum." in german
    assert "The end date is before the start date." not in german
    assert "Bis Datum" in german and "Pro Seite" in german  # the form's labels


def test_message_page_in_german(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DEFERRED, subject="Angebot")
    add_attempt(message, message.recipients.get(), code=451, reply="4.7.1 try later", outcome="deferred")
    sign_in_verified(client, cast.support)
    german = page(client, reverse("relay:message_detail", args=[message.pk]), **DE)
    for text in ("Zustellversuche", "Envelope-Absender", "Nächster Versuch", "Jetzt erneut versuchen",
                 "Zurückgestellt", "Für diese Nachricht wurde keine Unzustellbarkeitsnachricht gesendet."):
        assert text in german, text
    assert "4.7.1 try later" in german  # the remote's SMTP reply, as it came
    assert "Delivery attempts" not in german and "Retry now" not in german
    english = page(client, reverse("relay:message_detail", args=[message.pk]), **EN)
    assert "Delivery attempts" in english and "Zustellversuche" not in english


def test_flash_messages_and_service_errors_in_german(client, cast):
    waiting = make_message(cast.a, state=QueuedMessage.State.DEFERRED)
    done = make_message(cast.a, state=QueuedMessage.State.DELIVERED)
    sign_in_verified(client, cast.support)
    retried = client.post(reverse("relay:message_retry", args=[waiting.pk]), follow=True, **DE).content.decode()
    assert f"Die Nachricht {waiting.queue_id} wird jetzt erneut versucht." in retried
    refused = client.post(reverse("relay:message_retry", args=[done.pk]), follow=True, **DE).content.decode()
    assert f"Die Nachricht {done.queue_id} ist zugestellt: Nur eingereihte" in refused
    english = client.post(reverse("relay:message_retry", args=[done.pk]), follow=True, **EN).content.decode()
    assert f"Message {done.queue_id} is delivered: only queued, deferred or held messages" in english


def test_cancel_form_in_german(client, cast):
    message = make_message(cast.a)
    sign_in_verified(client, cast.support)
    url = reverse("relay:message_cancel", args=[message.pk])
    german = page(client, url, **DE)
    assert "An den Absender zurückweisen" in german and "Nachricht abbrechen" in german
    response = client.post(url, {"action": "discard", "reason": "Spamwelle"}, follow=True, **DE)
    assert f"Die Nachricht {message.queue_id} wurde abgebrochen und verworfen." in response.content.decode()


def test_quarantine_in_german_and_its_service_error(client, cast):
    message = held(cast.a, subject="Billige Uhren")
    client.force_login(cast.a.user)
    german = page(client, reverse("relay:quarantine_list"), **DE)
    assert "<h1>Quarantäne</h1>" in german and "als Ham (erwünscht) lernen" in german and "Freigeben" in german
    assert "Nothing is held" not in german and "learn as ham" not in german
    delete = reverse("relay:quarantine_delete", args=[message.pk])
    first = client.post(delete, follow=True, **DE).content.decode()
    assert f"Die Nachricht {message.queue_id} ist gelöscht." in first
    again = client.post(delete, follow=True, **DE).content.decode()
    assert f"Die Nachricht {message.queue_id} ist nicht mehr in Quarantäne (abgebrochen)." in again
    assert "Nichts wird zurückgehalten." in again


def test_digest_link_page_in_german(client, cast):
    message = held(cast.a)
    token = quarantine.release_token(message_id=message.pk, mailbox_id=cast.a.mailbox.pk)
    german = page(client, reverse("relay:quarantine_link", args=[token]), **DE)
    assert "In meinen Posteingang zustellen" in german and "Deliver it to my inbox" not in german
    invalid = client.get(reverse("relay:quarantine_link", args=["nonsense"]), **DE).content.decode()
    assert "Dieser Link ist ungültig oder abgelaufen." in invalid


def test_quarantine_digest_in_german(cast):
    # Which language a mailbox's digest is written in is the sender's choice (relay.delivery.quarantine); here, the
    # digest's own words in German.
    message = held(cast.a, subject="Erste")
    context = {"mailbox": cast.a.mailbox, "items": [{"message": message, "link": "https://panel.example/r/1"}],
               "days": 7, "retention": 1, "list_url": "https://panel.example/quarantine/"}
    with translation.override("de"):
        text = render_to_string("relay/email/quarantine_digest.txt", context)
    assert f"Diese Nachrichten an {cast.a.mailbox.address} wurden als Spam zurückgehalten" in text
    assert ("Jeder Link funktioniert einmal, 7 Tage lang; zurückgehaltene Nachrichten werden nach 1 Tag gelöscht."
            in text)
    assert "Betreff: Erste" in text and "Freigeben: https://panel.example/r/1" in text
    assert "Spam-Bewertung 20,00" in text  # a German decimal comma
    assert "held as spam" not in text
    with translation.override("en"):
        english = render_to_string("relay/email/quarantine_digest.txt", context)
    assert "Each link works once, for 7 days; held messages are deleted after 1 day." in english
    assert "Subject: Erste" in english and "Release: https://panel.example/r/1" in english


def test_lockouts_in_german_while_the_audit_log_keeps_english(client, cast):
    item = AuthLockout.objects.create(kind=AuthLockout.Kind.USERNAME, value="info@alpha.test",
                                      customer=cast.a.customer, failures=10,
                                      locked_until=timezone.now() + timedelta(minutes=15))
    sign_in_verified(client, cast.support)
    german = page(client, reverse("relay:lockout_list"), **DE)
    assert "<h1>SMTP-Anmeldesperren</h1>" in german and "Benutzername" in german and "Aufheben" in german
    assert 'placeholder="Grund (optional)"' in german and "Keine kürzlich beendeten Sperren." in german
    assert "SMTP sign-in lockouts" not in german
    lifted = client.post(reverse("relay:lockout_lift", args=[item.pk]), {"reason": "Anruf"}, follow=True, **DE)
    assert "Die Sperre von info@alpha.test ist aufgehoben." in lifted.content.decode()
    assert AuditEntry.objects.get(action="lockout.lift").object_repr == "username info@alpha.test"


def test_smart_host_page_in_german(client, cast):
    sign_in_verified(client, cast.support)
    url = reverse("relay:domain_smarthost", args=[cast.a.domain.pk])
    german = page(client, url, **DE)
    assert "Versandweg speichern" in german and "Derzeit: MX-Abfrage" in german and "Save the route" not in german
    refused = client.post(url, {"url": "", "reason": ""}, **DE).content.decode()
    assert "Der Versandweg wurde nicht geändert; siehe die Fehler unten." in refused
    saved = client.post(url, {"url": "", "reason": "zurück"}, follow=True, **DE).content.decode()
    assert f"Mail von {cast.a.domain.unicode_name} geht jetzt per MX-Abfrage." in saved


def test_sending_chart_in_german(client, cast):
    make_message(cast.a, state=QueuedMessage.State.DELIVERED)
    client.force_login(cast.a.user)
    german = page(client, reverse("dashboard"), **DE)
    assert "In den letzten 14 Tagen gesendete Mail" in german and "Gesendet (angenommen)" in german
    assert "1 Empfänger angenommen, 1 zugestellt" in german and "Sent (accepted)" not in german
    # The picture's coordinates are SVG numbers, never German decimals ("12,5" is no SVG length).
    svg = re.search(r"<svg.*</svg>", german, re.S).group(0)
    numbers = re.findall(r'\s(?:x|y|x1|x2|y1|y2|width|height)="([^"]*)"', svg)
    assert numbers and all(re.fullmatch(r"-?\d+(\.\d+)?%?", n) for n in numbers), numbers
    assert any("." in n for n in numbers)  # there are fractions, written with a point


def test_the_api_schema_stays_english_for_a_german_browser(client):
    with translation.override("de"):
        assert str(Status.SUSPENDED.label) == "Gesperrt"  # the label is translated in the panel
    response = client.get("/api/schema/?format=json", **DE)
    schema = json.dumps(json.loads(response.content))
    assert "`suspended` - Suspended" in schema and "Gesperrt" not in schema
    assert response["Content-Language"] == "en"


def test_translatable_choice_labels_need_no_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_api_answers_in_english_for_a_german_client(cast):
    # The same refusal the panel shows in German (test_flash_messages_and_service_errors_in_german).
    done = make_message(cast.a, state=QueuedMessage.State.DELIVERED)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(actor=None, user=cast.support, name='ops').secret}")
    response = api.post(f"/api/v1/messages/{done.pk}/retry/", **DE)
    assert response.status_code == 400 and response["Content-Language"] == "en"
    body = json.dumps(response.json())
    assert f"Message {done.queue_id} is delivered: only queued, deferred or held messages" in body
    assert "Nachricht" not in body
    # DRF's own texts too.
    missing = api.post(f"/api/v1/messages/{done.pk}/cancel/", {}, content_type="application/json", **DE).json()
    assert "This field is required." in json.dumps(missing) and "Dieses Feld" not in json.dumps(missing)
