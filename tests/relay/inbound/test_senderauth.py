"""Sender authentication on the way in, against dnsmasq serving SPF, DKIM and DMARC records: pass, fail,
p=reject (refused at the end of DATA), p=quarantine (delivered, marked), through the MX and directly."""

import dkim
import pytest

from accounts.dkim_keys import decrypt_private_key
from accounts.services.domains import dkim_keypair, domain_set_dmarc_reject_policy
from relay.inbound import senderauth
from relay.models import QueuedMessage
from tests.support.inbound import mta_client
from tests.support.smtp import send

STORED, PUBLIC = dkim_keypair(1024)
PRIVATE = decrypt_private_key(STORED)  # dkim_keypair returns the key as stored: encrypted
RECORDS = [
    "pass.example,v=spf1 ip4:127.0.0.1 -all",
    "fail.example,v=spf1 ip4:192.0.2.1 -all",
    "reject.example,v=spf1 ip4:192.0.2.1 -all",
    "_dmarc.reject.example,v=DMARC1; p=reject",
    "quarantine.example,v=spf1 -all",
    "_dmarc.quarantine.example,v=DMARC1; p=quarantine",
    "signed.example,v=spf1 -all",
    "_dmarc.signed.example,v=DMARC1; p=reject",
    f"sel._domainkey.signed.example,v=DKIM1; k=rsa; p={PUBLIC}",
    "mta.pass.example,v=spf1 ip4:127.0.0.1 -all",
]


@pytest.fixture
def dns(dns_server):
    return dns_server(txt=RECORDS)


def message(from_domain: str, *, sign: bool = False, body: bytes = b"Hello.\r\n") -> bytes:
    data = (f"From: Someone <someone@{from_domain}>\r\nTo: info@alpha.test\r\nSubject: auth test\r\n"
            f"Message-ID: <1@{from_domain}>\r\n\r\n").encode() + body
    if sign:
        data = dkim.sign(data, b"sel", from_domain.encode(), PRIVATE.encode(),
                         include_headers=[b"from", b"to", b"subject", b"message-id"]) + data
    return data


def verify(data: bytes, mail_from: str, helo: str = "mta.pass.example"):
    return senderauth.verify(data, client_ip="127.0.0.1", helo=helo, mail_from=mail_from)


def test_spf_pass_and_aligned_dmarc(dns, settings):
    verdict = verify(message("pass.example"), "bounce@pass.example")
    assert (verdict.spf, verdict.helo_spf, verdict.dmarc, verdict.action) == ("pass", "pass", "none", "accept")
    assert verdict.sender_authenticated
    assert verdict.header.startswith(f"Authentication-Results: {settings.MX_AUTHSERV_ID};")
    assert "smtp.mailfrom=bounce@pass.example" in verdict.header and "smtp.helo=mta.pass.example" in verdict.header


def test_spf_fail_is_not_authenticated(dns):
    verdict = verify(message("fail.example"), "someone@fail.example")
    assert verdict.spf == "fail" and not verdict.sender_authenticated
    assert "spf=fail" in verdict.header


def test_dmarc_reject_when_neither_spf_nor_dkim_aligns(dns):
    verdict = verify(message("reject.example"), "someone@reject.example")
    assert (verdict.dmarc, verdict.policy, verdict.action) == ("fail", "reject", "reject")


def test_dmarc_reject_can_be_relaxed_to_deliver_and_mark(dns, settings):
    settings.MX_DMARC_REJECT = False
    assert verify(message("reject.example"), "someone@reject.example").action == "quarantine"


def test_dmarc_quarantine(dns):
    verdict = verify(message("quarantine.example"), "someone@quarantine.example")
    assert (verdict.dmarc, verdict.action) == ("fail", "quarantine")


def test_aligned_dkim_passes_dmarc_despite_spf_fail(dns):
    verdict = verify(message("signed.example", sign=True), "someone@signed.example")
    assert verdict.spf == "fail"
    assert verdict.dkim == [("pass", "signed.example")]
    assert (verdict.dmarc, verdict.action) == ("pass", "accept")
    assert verdict.sender_authenticated  # aligned DKIM: a DSN would reach the real sender
    assert "dkim=pass header.d=signed.example" in verdict.header and "dmarc=pass" in verdict.header


def test_altered_body_fails_dkim_and_then_dmarc(dns):
    data = message("signed.example", sign=True).replace(b"Hello.", b"Hacked")
    verdict = verify(data, "someone@signed.example")
    assert verdict.dkim == [("fail", "signed.example")]
    assert (verdict.dmarc, verdict.action) == ("fail", "reject")
    assert not verdict.sender_authenticated


def test_null_sender_is_checked_with_the_helo_identity(dns):
    verdict = verify(message("pass.example"), "")
    assert verdict.spf == "pass" and "smtp.mailfrom=postmaster@mta.pass.example" in verdict.header


# --- through the MX -------------------------------------------------------------------------------------------


@pytest.fixture
def mx(mx_factory, cast, dns):
    return mx_factory()


def submit(mx, mail_from: str, data: bytes, helo: str = "mta.pass.example", recipients=("info@alpha.test",)):
    with mta_client(mx.port, ehlo=helo, starttls=True) as client:
        return send(client, sender=mail_from, recipients=list(recipients), data=data)[-1]


@pytest.mark.django_db(transaction=True)
def test_mx_refuses_dmarc_reject_at_the_end_of_data(mx):
    code, text = submit(mx, "someone@reject.example", message("reject.example"))
    assert code == 550 and text.startswith(b"5.7.1 Message rejected: the DMARC policy of reject.example"), text
    assert not QueuedMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_mx_marks_dmarc_quarantine_and_stores_the_verdict(mx):
    assert submit(mx, "someone@quarantine.example", message("quarantine.example"))[0] == 250
    stored = QueuedMessage.objects.get()
    content = bytes(stored.content)
    assert b"\r\nX-Spam-Flag: YES\r\n" in content and b"dmarc=fail" in content
    assert not stored.sender_authenticated


@pytest.mark.django_db(transaction=True)
def test_mx_stores_authentication_results_and_authenticated_sender(mx, settings):
    assert submit(mx, "someone@signed.example", message("signed.example", sign=True))[0] == 250
    stored = QueuedMessage.objects.get()
    content = bytes(stored.content)
    header = content[content.index(b"Authentication-Results:"):].split(b"\r\n\r\n")[0]
    assert header.startswith(f"Authentication-Results: {settings.MX_AUTHSERV_ID};".encode())
    assert b"dkim=pass" in header and b"dmarc=pass" in header and b"X-Spam-Flag" not in content
    assert stored.sender_authenticated
    # The signature still verifies over what is stored (our headers are added above it).
    assert dkim.verify(content, dnsfunc=lambda name, timeout=5: f"v=DKIM1; k=rsa; p={PUBLIC}".encode())


@pytest.mark.django_db(transaction=True)
def test_a_domain_relaxed_to_mark_gets_dmarc_reject_delivered_and_marked(mx, cast):
    domain_set_dmarc_reject_policy(actor=cast.a.user, domain=cast.a.domain, policy="mark")
    assert submit(mx, "someone@reject.example", message("reject.example"))[0] == 250
    stored = QueuedMessage.objects.get()
    assert stored.recipients.get().mailbox_id == cast.a.mailbox.pk
    content = bytes(stored.content)
    assert b"\r\nX-Spam-Flag: YES\r\n" in content and b"dmarc=fail" in content
    # Another domain still refuses it, and so does a transaction that includes that domain.
    code, text = submit(mx, "someone@reject.example", message("reject.example"), recipients=["info@bravo.test"])
    assert code == 550 and text.startswith(b"5.7.1 Message rejected"), text
    code, _ = submit(mx, "someone@reject.example", message("reject.example"),
                     recipients=["info@alpha.test", "info@bravo.test"])
    assert code == 550 and QueuedMessage.objects.count() == 1


def test_action_for_a_recipient_domain_that_does_not_honour_reject(dns, settings):
    verdict = verify(message("reject.example"), "someone@reject.example")
    assert verdict.action_for(honour_reject=False) == "quarantine"
    assert verdict.action_for(honour_reject=True) == "reject"
    settings.MX_DMARC_REJECT = False
    assert verdict.action_for(honour_reject=True) == "quarantine"


def test_our_results_are_removed_whatever_the_field_name_case(settings):
    data = (f"authentication-RESULTS : {settings.MX_AUTHSERV_ID}; spf=pass smtp.mailfrom=forged.example\r\n"
            f"\tdmarc=pass header.from=forged.example\r\n").encode() + message("forged.example")
    stripped = senderauth.strip_own_results(data)
    assert stripped == message("forged.example")


def test_a_message_without_results_fields_is_not_copied():
    data = message("pass.example")
    assert senderauth.strip_own_results(data) is data
