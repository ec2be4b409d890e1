"""DKIM: messages from a domain whose key is published are signed; dkimpy verifies against the key in dnsmasq."""

import dkim as dkimpy
import pytest

from accounts import dnscheck
from accounts.services.domains import domain_check_now
from relay.delivery import attempts, dkim
from relay.delivery.smtpclient import ConnectionCache
from tests.support.delivery import mx, queue, routes  # noqa: F401

pytestmark = pytest.mark.django_db


def dns_txt(name, timeout=5):
    """dkimpy's DNS lookup, answered by the test's DNS server through the project's resolver."""
    name = name.decode() if isinstance(name, bytes) else name
    values = dnscheck.txt_values(name.rstrip("."))
    return values[0].encode() if values else None


def publish_checked(domain):
    """Record the DNS check the panel runs, so the domain's DKIM record counts as published."""
    domain_check_now(actor=None, domain=domain)
    domain.refresh_from_db()
    assert domain.dns_status["dkim"]["status"] == "found"
    return domain


def test_signed_and_verified_against_the_published_key(cast, routes, mx):
    publish_checked(cast.a.domain)
    message = queue(cast.a, "bob@b.test", subject="Signed")
    attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0))
    message.refresh_from_db()
    assert message.dkim_signed and message.state == "delivered"
    [got] = mx.messages
    assert got.content.startswith(b"DKIM-Signature:")
    signature = got.message["DKIM-Signature"]
    tags = dict(t.strip().split("=", 1) for t in signature.replace("\r\n", "").split(";") if "=" in t)
    assert tags["d"] == "alpha.test" and tags["s"] == cast.a.domain.dkim_selector and tags["a"] == "rsa-sha256"
    signed = tags["h"].replace(" ", "").replace("\t", "").lower().split(":")
    assert {"from", "to", "subject", "date", "message-id"} <= set(signed) and "received" not in signed
    assert dkimpy.verify(got.content, dnsfunc=dns_txt)
    assert not dkimpy.verify(got.content.replace(b"Hello.", b"Hullo."), dnsfunc=dns_txt), "body is covered"


def test_retry_sends_the_same_signature(cast, routes, mx):
    publish_checked(cast.a.domain)
    mx.replies["bob@b.test"] = ["451 4.3.0 later", "250 OK"]
    message = queue(cast.a, "bob@b.test")
    attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0))
    message.refresh_from_db()
    signed = bytes(message.content)
    attempts.deliver(message.pk, cache=ConnectionCache(idle_seconds=0), now=message.next_attempt_at)
    assert mx.messages[0].content == signed and signed.count(b"DKIM-Signature") == 1


def test_not_signed_without_a_published_record_or_with_a_foreign_from(cast, routes, mx):
    message = queue(cast.a, "bob@b.test")
    assert dkim.sign_message(message) is False, "the record has not been seen in the DNS"
    publish_checked(cast.a.domain)
    foreign = queue(cast.a, "bob@b.test", mail_from="someone@elsewhere.example")
    assert dkim.sign_message(foreign) is False
    subdomain = queue(cast.a, "bob@b.test", mail_from="news@lists.alpha.test")
    assert dkim.sign_message(subdomain) is True
    bounce = queue(cast.a, "bob@b.test", mail_from="", is_bounce=True)
    assert dkim.sign_message(bounce) is False
