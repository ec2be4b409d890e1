"""The quarantine: held messages listed to whoever sees them in the message log, released into the normal delivery
(without our spam marking) or deleted, each audited; the daily digest with signed, single-use, expiring release
links sent through the outbound queue; the retention purge; the detail page's checks and symbols."""

import email
import email.policy
from datetime import timedelta

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from relay.delivery import quarantine
from relay.delivery.tasks import purge_quarantine, send_quarantine_digests
from relay.models import QueuedMessage, Recipient
from tests.support.logdata import make_message
from tests.support.permissions import assert_shows_only, mailbox_user

pytestmark = pytest.mark.django_db(transaction=True)  # the hand-over runs on commit

HELD = (b"Received: from mta.sender.example\r\nAuthentication-Results: mx.example.net; spf=pass\r\n"
        b"X-Spam-Flag: YES\r\nX-Spam-Score: 20.00\r\nX-Spam-Status: Yes, score=20.00 action=reject\r\n"
        b"From: offers@sender.example\r\nSubject: Cheap\r\n\r\nBuy now\r\n")


def held(tenant, subject="Cheap watches", **fields) -> QueuedMessage:
    message = make_message(tenant, to=(tenant.mailbox.address,), state=QueuedMessage.State.QUARANTINED,
                           subject=subject, mail_from="offers@sender.example", via_mailbox=False,
                           direction=QueuedMessage.Direction.INBOUND, spam_score=20.0, spam_action="reject",
                           spam_symbols={"GTUBE": 0.0, "BAYES_SPAM": 5.1, "MIME_GOOD": -0.1},
                           auth_results="Authentication-Results: mx.example.net; spf=pass", **fields)
    QueuedMessage.objects.filter(pk=message.pk).update(content=HELD)
    Recipient.objects.filter(message=message).update(mailbox=tenant.mailbox)
    return QueuedMessage.objects.get(pk=message.pk)


@pytest.fixture
def handed(monkeypatch):
    ids = []
    monkeypatch.setattr("relay.panel.quarantine.enqueue", ids.extend)
    monkeypatch.setattr("relay.delivery.quarantine.enqueue", ids.extend)
    return ids


def test_quarantine_lists_only_what_each_user_sees(client, cast):
    held(cast.a, subject="Alpha spam")
    held(cast.b, subject="Bravo spam")
    url = reverse("relay:quarantine_list")
    assert_shows_only(client, cast.a.user, url, ("Alpha spam", "BAYES_SPAM", "20.00", "offers@sender.example"),
                      ("Bravo spam",))
    assert_shows_only(client, cast.reseller_a_admin, url, ("Alpha spam",), ("Bravo spam",))
    assert_shows_only(client, cast.support, url, ("Alpha spam", "Bravo spam"), ())
    assert_shows_only(client, mailbox_user(cast.a.mailbox), url, ("Alpha spam",), ("Bravo spam",))


def test_release_delivers_without_our_spam_fields_and_is_audited(client, cast, handed, settings):
    settings.RSPAMD_CONTROLLER_URL = ""
    message = held(cast.a)
    client.force_login(cast.a.user)
    response = client.post(reverse("relay:quarantine_release", args=[message.pk]), REMOTE_ADDR="192.0.2.7",
                           follow=True)
    assert "is released" in response.content.decode()
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.QUEUED and handed == [message.pk]
    content = bytes(message.content)
    assert b"X-Spam" not in content and b"Authentication-Results: mx.example.net" in content
    assert message.size == len(content)
    entry = AuditEntry.objects.get(action="quarantine.release")
    assert entry.actor == cast.a.user and entry.client_ip == "192.0.2.7" and entry.customer_id == cast.a.customer.pk


def test_release_with_learning_says_truthfully_that_rspamd_was_not_reached(client, cast, handed, settings):
    settings.RSPAMD_CONTROLLER_URL, settings.RSPAMD_TIMEOUT = "http://127.0.0.1:9", 1
    message = held(cast.a)
    client.force_login(cast.a.user)
    response = client.post(reverse("relay:quarantine_release", args=[message.pk]), {"learn": "on"}, follow=True)
    page = response.content.decode()
    assert "is released" in page and "It was not learned as ham: rspamd did not answer" in page


def test_release_learns_ham_in_a_real_rspamd(client, cast, handed, rspamd):
    message = held(cast.a)
    text = b"Dear customer, your order of three blue garden chairs ships on Tuesday from our warehouse.\r\n" * 5
    QueuedMessage.objects.filter(pk=message.pk).update(content=HELD.replace(b"Buy now\r\n", text))
    client.force_login(cast.a.user)
    response = client.post(reverse("relay:quarantine_release", args=[message.pk]), {"learn": "on"}, follow=True)
    page = response.content.decode()
    assert "is released" in page and "not learned" not in page and "rspamd-test-password" not in page
    assert AuditEntry.objects.get(action="quarantine.release").after == {"state": "queued", "learn": True}


def test_another_tenant_cannot_release_or_delete(client, cast, handed):
    message = held(cast.a)
    client.force_login(cast.b.user)
    assert client.post(reverse("relay:quarantine_release", args=[message.pk])).status_code == 404
    assert client.post(reverse("relay:quarantine_delete", args=[message.pk])).status_code == 404
    client.logout()
    assert client.post(reverse("relay:quarantine_release", args=[message.pk]))["Location"].startswith("/login/")
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.QUARANTINED and not handed


def test_delete_drops_the_content_and_keeps_the_log_row(client, cast, handed):
    message = held(cast.a)
    client.force_login(cast.support)
    client.post(reverse("relay:quarantine_delete", args=[message.pk]))
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.CANCELLED and message.content is None and not handed
    assert message.recipients.get().state == Recipient.State.CANCELLED
    assert AuditEntry.objects.filter(action="quarantine.delete").count() == 1
    # Nothing to release any more.
    client.force_login(cast.a.user)
    response = client.post(reverse("relay:quarantine_release", args=[message.pk]), follow=True)
    assert "no longer in quarantine" in response.content.decode() and not handed


def test_detail_page_shows_authentication_results_and_symbols(client, cast):
    message = held(cast.a)
    client.force_login(cast.a.user)
    page = client.get(reverse("relay:message_detail", args=[message.pk])).content.decode()
    assert "Authentication-Results: mx.example.net; spf=pass" in page
    assert "reject, score 20.00" in page
    assert page.index("BAYES_SPAM") < page.index("MIME_GOOD") < page.index("GTUBE")


def test_digest_is_queued_once_per_mailbox_with_working_single_use_links(client, cast, handed, settings):
    settings.PANEL_URL = "https://panel.example.net"
    first, second = held(cast.a, subject="First"), held(cast.a, subject="Second")
    held(cast.b, subject="Bravo")
    assert send_quarantine_digests() == 2
    assert send_quarantine_digests() == 0  # each held message is listed once
    digest = QueuedMessage.objects.get(recipients__address=cast.a.mailbox.address, mail_from="",
                                       subject__startswith="Quarantine digest")
    assert digest.state == QueuedMessage.State.QUEUED and digest.pk in handed
    assert digest.recipients.get().mailbox_id == cast.a.mailbox.pk  # delivered over LMTP, like any local mail
    mail = email.message_from_bytes(bytes(digest.content), policy=email.policy.default)
    text = mail.get_content()
    assert mail["Auto-Submitted"] == "auto-generated" and "First" in text and "Second" in text and "Bravo" not in text
    links = [line.split("Release: ", 1)[1].strip() for line in text.splitlines() if line.startswith("Release: ")]
    assert len(links) == 2 and all(link.startswith("https://panel.example.net/quarantine/release/") for link in links)
    path = links[0].removeprefix("https://panel.example.net")
    # Opening the link releases nothing (mail scanners open links); the button does, once.
    assert "Deliver it to my inbox" in client.get(path).content.decode()
    first.refresh_from_db()
    assert first.state == QueuedMessage.State.QUARANTINED
    client.post(path)
    first.refresh_from_db()
    assert first.state == QueuedMessage.State.QUEUED and "digest link" in first.state_reason
    assert "no longer held" in client.post(path, follow=True).content.decode()
    assert AuditEntry.objects.get(action="quarantine.release").actor is None


def test_a_forged_expired_or_foreign_link_releases_nothing(client, cast, settings):
    message = held(cast.a)
    token = quarantine.release_token(message_id=message.pk, mailbox_id=cast.a.mailbox.pk)
    assert client.post(reverse("relay:quarantine_link", args=[token[:-2] + "xx"])).status_code == 404
    foreign = quarantine.release_token(message_id=message.pk, mailbox_id=cast.b.mailbox.pk)
    assert client.post(reverse("relay:quarantine_link", args=[foreign])).status_code == 404
    settings.QUARANTINE_LINK_DAYS = 0
    with pytest.raises(signing.SignatureExpired):
        quarantine.read_token(signing.dumps({"m": message.pk, "b": cast.a.mailbox.pk}, salt=quarantine.LINK_SALT))
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.QUARANTINED


def test_purge_deletes_only_messages_past_the_retention(cast, settings):
    settings.QUARANTINE_RETENTION_DAYS = 30
    old = held(cast.a, created_at=timezone.now() - timedelta(days=31))
    recent = held(cast.a, created_at=timezone.now() - timedelta(days=29))
    assert purge_quarantine() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.state == QueuedMessage.State.CANCELLED and old.content is None and "30 days" in old.state_reason
    assert recent.state == QueuedMessage.State.QUARANTINED and recent.content is not None
