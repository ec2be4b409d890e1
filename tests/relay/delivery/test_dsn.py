"""Bounces are RFC 3464 delivery status notifications: parsed with the email package, field by field."""

from email import message_from_bytes
from email.policy import default

import pytest

from relay.delivery import attempts
from relay.delivery.smtpclient import ConnectionCache
from relay.models import QueuedMessage
from tests.support.delivery import mx, queue, routes  # noqa: F401

pytestmark = pytest.mark.django_db


def parse(message: QueuedMessage):
    return message_from_bytes(bytes(message.content), policy=default)


def test_bounce_is_a_multipart_report_with_every_field(cast, routes, mx):
    mx.replies["nobody@b.test"] = ["550 5.1.1 <nobody@b.test>: Recipient address rejected: User unknown"]
    original = queue(cast.a, "ok@b.test", "nobody@b.test", subject="Quarterly report")
    attempts.deliver(original.pk, cache=ConnectionCache(idle_seconds=0))
    [bounce] = original.bounces.all()
    assert bounce.is_bounce and bounce.mail_from == "" and bounce.bounce_of == original
    report = parse(bounce)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["From"] == "Mail Delivery System <MAILER-DAEMON@relay.test>"
    assert report["To"] == cast.a.mailbox.address
    assert report["Subject"] == "Undelivered Mail Returned to Sender"
    assert report["Auto-Submitted"] == "auto-replied" and report["Message-ID"] == bounce.message_id
    human, status, headers = report.get_payload()

    assert human.get_content_type() == "text/plain"
    text = human.get_content()
    assert "could not be delivered" in text and "<nobody@b.test>: host mx1.b.test said:" in text
    assert "Quarterly report" in text and original.queue_id in text and "ok@b.test" not in text

    assert status.get_content_type() == "message/delivery-status"
    per_message, *per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; relay.test"
    assert per_message["X-Queue-ID"] == original.queue_id and per_message["Arrival-Date"]
    [failed] = per_recipient
    assert failed["Final-Recipient"] == "rfc822; nobody@b.test"
    assert failed["Action"] == "failed"
    assert failed["Status"] == "5.1.1"
    assert failed["Remote-MTA"] == "dns; mx1.b.test"
    assert failed["Diagnostic-Code"] == ("smtp; 550 5.1.1 <nobody@b.test>: Recipient address rejected: "
                                         "User unknown")

    assert headers.get_content_type() == "text/rfc822-headers"
    original_headers = headers.get_content()
    assert "Subject: Quarterly report" in original_headers and f"From: {cast.a.mailbox.address}" in original_headers
    assert "Hello." not in original_headers, "headers only, not the body"


def test_dsn_without_a_remote_host_has_no_remote_mta(cast, routes, mx):
    original = queue(cast.a, "x@nullmx.test")
    attempts.deliver(original.pk, cache=ConnectionCache(idle_seconds=0))
    [failed] = parse(original.bounces.get()).get_payload()[1].get_payload()[1:]
    assert failed["Status"] == "5.1.10" and failed["Remote-MTA"] is None
    assert failed["Diagnostic-Code"].startswith("X-hostingmail; Domain nullmx.test accepts no mail")


def test_delay_warning_once_then_the_failure(cast, routes, mx, settings):
    from datetime import timedelta

    from django.utils import timezone

    from relay.delivery import tasks

    settings.DELIVERY_WARN_AFTER_SECONDS = 3600
    mx.replies["slow@b.test"] = ["451 4.4.5 Insufficient system storage"]
    original = queue(cast.a, "slow@b.test", created_at=timezone.now() - timedelta(hours=2))
    fresh = queue(cast.a, "slow@b.test", subject="fresh")
    for message in (original, fresh):
        attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0))
    assert tasks.send_delay_warnings() == 1
    assert tasks.send_delay_warnings() == 0, "one warning per message"
    [warning] = original.bounces.all()
    report = parse(warning)
    assert report["Subject"].startswith("Delayed Mail")
    [delayed] = report.get_payload()[1].get_payload()[1:]
    assert (delayed["Action"], delayed["Status"]) == ("delayed", "4.4.5")
    assert "only a warning" in report.get_payload()[0].get_content()
    settings.DELIVERY_WARN_AFTER_SECONDS = 0
    assert tasks.send_delay_warnings() == 0
