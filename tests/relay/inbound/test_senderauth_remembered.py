"""What the MX's sender checks keep between messages: SPF verdicts and DMARC policies for as long as the DNS
answers they were reached from are kept (their TTL), and checks made without a lookup when every answer is at hand
(on the event loop); a negative or failed answer is never the ground of a kept verdict."""

import re

import dns.query
import pytest
import spf

from relay.inbound import senderauth
from relay.models import QueuedMessage
from relay.smtpd import mx as mx_module
from tests.relay.inbound.test_senderauth import RECORDS, message, submit, verify

KEPT_FOR = ["--local-ttl=300"]  # answers with a TTL, as published records have (dnsmasq's default is 0)


@pytest.fixture(autouse=True)
def fresh_resolver():
    """Each test's DNS server on its own port gets its own resolver; a port used again must not find answers kept
    from another test's records."""
    senderauth._resolver.cache_clear()
    yield
    senderauth._resolver.cache_clear()


@pytest.fixture
def counted(monkeypatch):
    """Calls of pyspf's evaluation, of authheaders' DMARC policy lookup and of DNS queries sent, counted."""
    calls = {"spf": 0, "dmarc": 0, "queries": 0}

    def counting(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(spf, "check2", counting("spf", spf.check2))
    monkeypatch.setattr(senderauth, "_receiver_record", counting("dmarc", senderauth._receiver_record))
    monkeypatch.setattr(dns.query, "udp", counting("queries", dns.query.udp))
    return calls


def test_spf_and_dmarc_are_remembered_while_their_answers_are_kept(dns_server, counted):
    dns_server(txt=RECORDS, raw=KEPT_FOR)
    first = verify(message("quarantine.example"), "someone@quarantine.example")
    assert (counted["spf"], counted["dmarc"]) == (2, 1)  # HELO and MAIL FROM; the From domain's policy
    again = verify(message("quarantine.example"), "someone@quarantine.example")
    assert (counted["spf"], counted["dmarc"]) == (2, 1)
    assert (again.spf, again.helo_spf, again.dmarc, again.policy, again.header) == (
        first.spf, first.helo_spf, first.dmarc, first.policy, first.header)
    # Another sender at the same domain is another SPF identity (a record may name the local part).
    verify(message("quarantine.example"), "other@quarantine.example")
    assert (counted["spf"], counted["dmarc"]) == (3, 1)


def test_a_remembered_dmarc_verdict_is_only_that_of_the_same_from_and_results(dns_server, counted):
    dns_server(txt=RECORDS, raw=KEPT_FOR)
    signed = message("signed.example", sign=True)
    passed = verify(signed, "someone@signed.example")
    assert (passed.dkim, passed.dmarc, passed.action) == ([("pass", "signed.example")], "pass", "accept")
    altered = verify(signed.replace(b"Hello.", b"Hacked"), "someone@signed.example")
    assert (altered.dkim, altered.dmarc, altered.action) == ([("fail", "signed.example")], "fail", "reject")
    assert "dkim=fail" in altered.header and "dmarc=fail" in altered.header
    # Another From domain from the same sender is judged by its own policy.
    other = verify(message("quarantine.example"), "someone@signed.example")
    assert (other.from_domain, other.dmarc, other.action) == ("quarantine.example", "fail", "quarantine")
    again = verify(signed, "someone@signed.example")
    assert (again.dmarc, again.header) == (passed.dmarc, passed.header)
    assert counted["dmarc"] == 2  # signed.example's policy once, quarantine.example's once


def test_nothing_is_remembered_past_its_answers_ttl(dns_server, counted):
    dns_server(txt=RECORDS)  # TTL 0: every answer has expired by the next message
    verify(message("quarantine.example"), "someone@quarantine.example")
    verify(message("quarantine.example"), "someone@quarantine.example")
    assert (counted["spf"], counted["dmarc"]) == (4, 2)


def test_a_verdict_from_a_negative_answer_is_not_remembered(dns_server, counted):
    dns_server(txt=RECORDS, raw=KEPT_FOR)
    # nothing.example has no record at all (NXDOMAIN), for SPF and DMARC alike.
    for _ in range(2):
        verdict = verify(message("nothing.example"), "someone@nothing.example")
        assert (verdict.spf, verdict.dmarc) == ("none", "none")
    assert counted["spf"] == 2 + 1  # the HELO identity's verdict is remembered, the sender's is not
    assert counted["dmarc"] == 2


def test_a_check_at_hand_sends_no_query(dns_server, counted):
    dns_server(txt=RECORDS, raw=KEPT_FOR)
    data = message("signed.example", sign=True)
    at_hand = dict(client_ip="127.0.0.1", helo="mta.pass.example", mail_from="someone@signed.example")
    started = counted["queries"]  # the server's own readiness probe
    assert senderauth.verify_at_hand(data, **at_hand) is None  # nothing kept yet
    assert counted["queries"] == started
    checked = verify(data, "someone@signed.example")
    sent = counted["queries"]
    assert sent >= started + 4  # SPF twice, the DKIM key, the DMARC policy
    kept = senderauth.verify_at_hand(data, **at_hand)
    assert counted["queries"] == sent
    assert kept is not None and kept.dkim == [("pass", "signed.example")]
    assert (kept.spf, kept.dmarc, kept.header) == (checked.spf, checked.dmarc, checked.header)


def test_a_failed_lookup_is_not_remembered(dns_server, counted, monkeypatch, settings):
    dns_server(txt=RECORDS, raw=KEPT_FOR, silent=["hang.example"])
    monkeypatch.setattr(senderauth, "SPF_QUERY_SECONDS", 0.3)
    settings.DNS_TIMEOUT = 0.3
    for _ in range(2):
        assert verify(message("hang.example"), "someone@hang.example").spf == "temperror"
    assert counted["spf"] == 2 + 1  # the HELO identity remembered, the failed one not


@pytest.mark.django_db(transaction=True)
def test_the_mx_checks_a_known_sender_without_a_thread(mx_factory, cast, dns_server, counted, monkeypatch):
    dns_server(txt=RECORDS, raw=KEPT_FOR)
    mx = mx_factory()
    on_a_thread = []
    real = mx_module._authenticate
    monkeypatch.setattr(mx_module, "_authenticate", lambda *args: on_a_thread.append(1) or real(*args))
    for _ in range(2):
        assert submit(mx, "someone@signed.example", message("signed.example", sign=True))[0] == 250
    assert on_a_thread == [1]  # the first message's lookups only
    first, second = (bytes(m.content) for m in QueuedMessage.objects.order_by("pk"))

    def results(content: bytes) -> bytes:  # our field alone (the signature below it has its own time)
        return re.search(rb"^Authentication-Results:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", content, re.M).group()

    assert results(first) == results(second) and b"dkim=pass" in results(second) and b"dmarc=pass" in results(second)
    # A message too large for the loop goes to a thread whatever is kept.
    big = message("signed.example", sign=True, body=b"x" * 70 + b"\r\n" * 1 + (b"y" * 70 + b"\r\n") * 1000)
    assert submit(mx, "someone@signed.example", big)[0] == 250
    assert on_a_thread == [1, 1]
