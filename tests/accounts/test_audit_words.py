"""The audit log reads as what changed, in words, without internals; support's agent stays support's to see."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.audit_words import changes, row_for
from accounts.models import AuditEntry
from accounts.services.domains import domain_create
from accounts.services.limits import limit_set
from accounts.services.mailboxes import mailbox_update
from accounts.services.preferences import user_language_set
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db
URL = reverse("security:audit_log")


def test_a_limit_change_reads_old_to_new_with_the_reason(cast):
    limit_set(actor=cast.support, obj=cast.a.mailbox, changes={"send_per_hour": 100}, reason="first")
    limit_set(actor=cast.support, obj=cast.a.mailbox, changes={"send_per_hour": 500}, reason="newsletter",
              client_ip="192.0.2.7")
    entry = AuditEntry.objects.filter(action="mailbox.limits").first()
    row = row_for(entry, cast.support)
    assert row.headline == "Mailbox limits changed"
    assert row.changes == ["Sending limit per hour 100 → 500"]
    assert row.reason == "newsletter" and row.who == "support" and row.client_ip == "192.0.2.7"


def test_a_switch_reads_as_a_sentence_and_unchanged_fields_are_left_out(cast):
    mailbox_update(actor=cast.a.user, mailbox=cast.a.mailbox, smtp_enabled=False)
    entry = AuditEntry.objects.get(action="mailbox.update")
    assert changes(entry) == ["SMTP access turned off"]


def test_a_creation_shows_no_ids_tokens_or_key_blobs(cast):
    domain = domain_create(actor=cast.a.user, customer=cast.a.customer, name="shop-alpha.test")
    entry = AuditEntry.objects.get(action="domain.create", object_id=str(domain.pk))
    text = " ".join(changes(entry))
    assert "Name: shop-alpha.test" in text
    assert domain.verification_token not in text and "dkim" not in text.lower() and "BEGIN" not in text
    assert "Id" not in text and "Customer:" not in text


def test_customers_see_support_acted_with_its_reason_but_not_the_agent_or_address(client, cast):
    limit_set(actor=cast.support, obj=cast.a.customer, changes={"send_per_day": 500}, reason="Ticket 12",
              client_ip="198.51.100.9")
    client.force_login(cast.a.user)
    page = client.get(URL, {"action": "customer.limits"}).content.decode()
    assert "Sending limit per day no limit of its own → 500" in page and "reason: Ticket 12" in page
    assert "198.51.100.9" not in page and ">support<" not in page and ">Support<" in page


def test_support_sees_the_agent_and_address(cast):
    support_client = Client()
    sign_in_verified(support_client, cast.support)
    limit_set(actor=cast.support, obj=cast.a.customer, changes={"send_per_day": 500}, reason="Ticket 12",
              client_ip="198.51.100.9")
    page = support_client.get(URL, {"action": "customer.limits"}).content.decode()
    assert "198.51.100.9" in page and ">support<" in page


def test_a_language_change_reads_in_words(cast):
    user_language_set(actor=cast.a.user, user=cast.a.user, language="de")
    entry = AuditEntry.objects.get(action="user.language")
    row = row_for(entry, cast.a.user)
    assert row.headline == "User language changed"
    assert row.changes == ["Language as the browser says → Deutsch"]
