"""An SRS bounce coming back end to end: a copy forwarded outside bounces, the remote's DSN to the SRS address
reaches the MX over SMTP, is accepted at RCPT and goes back to the original sender through the outbound queue; a
forged or expired SRS address is refused at RCPT."""

import time

import pytest
import srslib

from accounts import srs
from accounts.services.aliases import alias_create
from relay.delivery import attempts
from relay.models import QueuedMessage
from tests.support.delivery import handed_over, routes  # noqa: F401
from tests.support.inbound import mta_client
from tests.support.smtp import send

pytestmark = pytest.mark.django_db(transaction=True)


def smtp(port: int, *, sender: str, to: str, content: bytes) -> list:
    with mta_client(port) as client:
        return send(client, sender=sender, recipients=[to], data=content)


def rcpt(port: int, to: str) -> tuple[int, str]:
    with mta_client(port) as client:
        assert client.docmd("MAIL", "FROM:<>")[0] == 250
        code, text = client.docmd("RCPT", f"TO:<{to}>")
        return code, text.decode()


def dsn(to: str) -> bytes:
    return (f"From: MAILER-DAEMON@b.test\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Content-Type: text/plain\r\n\r\n<boss@b.test>: 550 5.1.1 User unknown\r\n").encode()


def test_a_bounce_of_a_forwarded_copy_comes_back_through_the_mx_to_the_original_sender(cast, routes, mx_factory):
    mx = mx_factory()
    alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["boss@b.test"])
    original = b"From: Alice <alice@example.org>\r\nTo: team@alpha.test\r\nSubject: Hi\r\n\r\nHello.\r\n"
    with handed_over():
        assert smtp(mx.port, sender="alice@example.org", to="team@alpha.test", content=original)[-1][0] == 250
        received = QueuedMessage.objects.get(direction=QueuedMessage.Direction.INBOUND)
        [outcome] = attempts.forward_outside(received, list(received.recipients.all()))
    assert outcome.state == "delivered"
    copy = QueuedMessage.objects.get(direction=QueuedMessage.Direction.OUTBOUND)
    assert copy.mail_from.startswith("SRS0=") and copy.mail_from.endswith("@alpha.test")

    # boss@b.test does not exist: b.test's MX sends its DSN from <> to the copy's envelope sender.
    with handed_over():
        replies = smtp(mx.port, sender="", to=copy.mail_from, content=dsn(copy.mail_from))
    assert [code for code, _ in replies][-3:] == [250, 354, 250], replies
    bounce = QueuedMessage.objects.filter(direction=QueuedMessage.Direction.INBOUND).exclude(pk=received.pk).get()
    recipient = bounce.recipients.get()
    assert (bounce.mail_from, recipient.address, recipient.mailbox_id) == ("", "alice@example.org", None)

    # Alice is outside: the bounce goes back to her through the outbound queue, still from the null sender.
    with handed_over():
        [outcome] = attempts.forward_outside(bounce, [recipient])
    assert outcome.state == "delivered"
    back = QueuedMessage.objects.filter(direction=QueuedMessage.Direction.OUTBOUND).exclude(pk=copy.pk).get()
    assert (back.mail_from, back.is_bounce) == ("", True)
    assert list(back.recipients.values_list("address", flat=True)) == ["alice@example.org"]


def test_a_forged_or_expired_srs_address_is_refused_at_rcpt(cast, routes, mx_factory, settings, monkeypatch):
    mx = mx_factory()
    good = srs.srs_forward("alice@example.org", domain="alpha.test")
    hash_, rest = good[len("SRS0="):].split("=", 1)
    forged = f"SRS0={'AAAA' if hash_.upper() != 'AAAA' else 'BBBB'}={rest}"
    then = time.time() - (settings.SRS_MAX_AGE_DAYS + 2) * 86400
    with monkeypatch.context() as patch:
        patch.setattr(srslib.time, "time", lambda: then)
        expired = srs.srs_forward("alice@example.org", domain="alpha.test")
    assert rcpt(mx.port, good) == (250, "2.1.5 Recipient OK")
    for address in (forged, expired, "SRS0=xxxx=AB=example.org=alice@alpha.test"):
        assert rcpt(mx.port, address) == (550, "5.1.1 Invalid or expired SRS address"), address
    assert not QueuedMessage.objects.exists()
