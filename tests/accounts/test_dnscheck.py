"""Ownership proof and record checks against dnsmasq on loopback."""

import socket
import time

import dns.resolver
import pytest
from celery import current_app

from accounts import dnscheck
from accounts.models import AuditEntry, Domain
from accounts.services.domains import dkim_keypair, domain_check_now, domain_create
from accounts.tasks import recheck_domain, recheck_domains

MX = "mx.example.net"
INCLUDE = "_spf.example.net"


@pytest.fixture(autouse=True)
def _published_names(settings):
    settings.MAIL_MX_HOST = MX
    settings.SPF_INCLUDE = INCLUDE


@pytest.fixture
def pending(cast):
    return domain_create(actor=None, customer=cast.a.customer, name="new.test")


@pytest.fixture
def silent_dns(settings):
    """A bound socket nobody reads as the nameserver: queries get no answer at all, like a firewalled server."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        settings.DNS_NAMESERVERS = ["127.0.0.1"]
        settings.DNS_PORT = silent.getsockname()[1]
        settings.DNS_TIMEOUT = 0.2
        yield


def published(domain: Domain, **overrides) -> dict:
    """dnsmasq records publishing exactly what expected_records() asks for; a kind set to None is left out."""
    records = {
        "mx": ("mx", f"{domain.name},{MX},10"),
        "spf": ("txt", f"{domain.name},v=spf1 include:{INCLUDE} ~all"),
        "dkim": ("txt", f"{domain.dkim_selector}._domainkey.{domain.name},v=DKIM1; k=rsa; p={domain.dkim_public_key}"),
        "dmarc": ("txt", f"_dmarc.{domain.name},v=DMARC1; p=quarantine"),
    }
    records.update(overrides)
    out = {"mx": [], "txt": [], "local": ["test"]}
    for value in records.values():
        if value is not None:
            out[value[0]].append(value[1])
    return out


def statuses(result: dict) -> dict:
    return {kind: result[kind]["status"] for kind in dnscheck.KINDS}


def test_resolver_uses_the_configured_server(settings):
    settings.DNS_NAMESERVERS = ["127.0.0.1"]
    settings.DNS_PORT = 5353
    settings.DNS_TIMEOUT = 1.5
    res = dnscheck.resolver()
    assert (res.nameservers, res.port, res.lifetime) == (["127.0.0.1"], 5353, 1.5)


def test_resolver_falls_back_to_the_system_configuration(settings):
    settings.DNS_NAMESERVERS = []
    assert dnscheck.resolver().nameservers == dns.resolver.Resolver().nameservers


def test_verification_record_is_a_txt_under_its_own_label(pending, settings):
    name, value = dnscheck.verification_record(pending)
    assert name == "_hostingmail.new.test"
    assert value == settings.VERIFICATION_TXT_PREFIX + pending.verification_token


def test_published_proof_verifies_the_domain(pending, dns_server, cast):
    name, value = dnscheck.verification_record(pending)
    dns_server(txt=[f"{name},{value}", "new.test,v=spf1 -all"])

    domain = domain_check_now(actor=cast.a.user, domain=pending, client_ip="192.0.2.7")

    assert domain.is_verified and domain.status == Domain.DomainStatus.ACTIVE
    entry = AuditEntry.objects.get(action="domain.verify", object_id=str(pending.pk))
    assert (entry.actor, entry.client_ip) == (cast.a.user, "192.0.2.7")
    # Verified at once means checked at once: the records' status is there for the page.
    assert statuses(domain.dns_status) == {"mx": "missing", "spf": "wrong", "dkim": "missing", "dmarc": "missing"}
    assert domain.dns_checked_at is not None


def test_another_token_does_not_verify(pending, dns_server, settings):
    name, _ = dnscheck.verification_record(pending)
    dns_server(txt=[f"{name},{settings.VERIFICATION_TXT_PREFIX}not-the-token"])

    domain = domain_check_now(actor=None, domain=pending)

    assert not domain.is_verified and domain.status == Domain.DomainStatus.PENDING
    assert domain.dns_status["verification"]["status"] == "wrong"
    assert domain.dns_status["verification"]["found"] == [f"{settings.VERIFICATION_TXT_PREFIX}not-the-token"]
    assert not AuditEntry.objects.filter(action="domain.verify").exists()


def test_missing_proof_does_not_verify(pending, dns_server):
    dns_server(txt=["new.test,v=spf1 -all"])

    domain = domain_check_now(actor=None, domain=pending)

    assert not domain.is_verified
    assert domain.dns_status["verification"] == {
        "status": "missing", "expected": dnscheck.verification_record(pending)[1], "found": []}


def test_all_records_found(cast, dns_server):
    domain = cast.a.domain
    dns_server(**published(domain))

    result = dnscheck.check_records(domain)

    assert statuses(result) == dict.fromkeys(dnscheck.KINDS, "found")
    assert result["mx"]["found"] == [f"10 {MX}."]
    assert result["dkim"]["expected"] == f"v=DKIM1; k=rsa; p={domain.dkim_public_key}"


def test_long_dkim_key_published_as_several_strings_is_found(cast, dns_server):
    domain = cast.a.domain
    domain.dkim_private_key, domain.dkim_public_key = dkim_keypair(bits=2048)
    domain.save()
    record = next(r for r in dnscheck.expected_records(domain) if r["kind"] == "dkim")
    assert len(record["value"]) > 255 and [len(s) for s in record["strings"]][0] == 255
    server = dns_server(**published(domain))
    # dnsmasq serves it as two character-strings, as a zone file with "..." "..." would.
    answer = dnscheck.resolver().resolve(record["name"], "TXT")
    assert len(answer[0].strings) == 2, server.args()

    assert dnscheck.check_records(domain)["dkim"]["status"] == "found"


def test_no_records_are_missing(cast, dns_server):
    dns_server(local=["test"])
    result = dnscheck.check_records(cast.a.domain)
    assert statuses(result) == dict.fromkeys(dnscheck.KINDS, "missing")
    assert all(result[kind]["found"] == [] for kind in dnscheck.KINDS)


@pytest.mark.parametrize("kind, record, found", [
    ("mx", ("mx", "alpha.test,mx.elsewhere.test,10"), "10 mx.elsewhere.test."),
    ("spf", ("txt", "alpha.test,v=spf1 include:_spf.other.test -all"), "v=spf1 include:_spf.other.test -all"),
    ("dkim", ("txt", "hm1._domainkey.alpha.test,v=DKIM1; k=rsa; p=QUJDRA=="), "v=DKIM1; k=rsa; p=QUJDRA=="),
    ("dmarc", ("txt", "_dmarc.alpha.test,v=DMARC1; rua=mailto:x@alpha.test"), "v=DMARC1; rua=mailto:x@alpha.test"),
])
def test_record_not_ours_is_wrong(cast, dns_server, kind, record, found):
    domain = cast.a.domain
    assert domain.dkim_selector == "hm1"
    dns_server(**published(domain, **{kind: record}))

    result = dnscheck.check_records(domain)

    assert result[kind]["status"] == "wrong"
    assert result[kind]["found"] == [found]
    assert statuses(result) == {k: ("wrong" if k == kind else "found") for k in dnscheck.KINDS}


def test_two_spf_records_are_wrong_even_with_our_include(cast, dns_server):
    domain = cast.a.domain
    records = published(domain)
    records["txt"].append("alpha.test,v=spf1 a -all")
    dns_server(**records)
    assert dnscheck.check_records(domain)["spf"]["status"] == "wrong"


def test_silent_nameserver_is_an_error_not_a_crash(cast, silent_dns):
    started = time.monotonic()
    result = dnscheck.check_records(cast.a.domain)
    elapsed = time.monotonic() - started

    assert statuses(result) == dict.fromkeys(dnscheck.KINDS, "error")
    assert "No answer from the DNS" in result["mx"]["error"]
    # Four lookups bounded by DNS_TIMEOUT each (the default of 5 s would take 20 s).
    assert elapsed < 4


def test_silent_nameserver_leaves_a_pending_domain_pending(pending, silent_dns):
    domain = domain_check_now(actor=None, domain=pending)
    assert not domain.is_verified
    assert domain.dns_status["verification"]["status"] == "error"


def test_periodic_recheck_notices_a_removed_record(cast, dns_server, monkeypatch):
    domain = cast.a.domain
    server = dns_server(**published(domain))
    domain_check_now(actor=None, domain=domain)
    first = AuditEntry.objects.filter(action="domain.dns_changed", object_id=str(domain.pk)).count()
    server.stop()
    dns_server(**published(domain, dkim=None))
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)

    queued = recheck_domains()

    assert domain.pk in queued
    domain.refresh_from_db()
    assert statuses(domain.dns_status) == {"mx": "found", "spf": "found", "dkim": "missing", "dmarc": "found"}
    changes = AuditEntry.objects.filter(action="domain.dns_changed", object_id=str(domain.pk))
    assert changes.count() == first + 1
    entry = changes.first()
    assert entry.actor is None and entry.actor_label == "system"
    assert (entry.before["dkim"], entry.after["dkim"]) == ("found", "missing")


def test_recheck_without_changes_writes_no_audit_entry(cast, dns_server):
    domain = cast.a.domain
    dns_server(**published(domain))
    recheck_domain(domain.pk)
    count = AuditEntry.objects.filter(action="domain.dns_changed").count()
    recheck_domain(domain.pk)
    assert AuditEntry.objects.filter(action="domain.dns_changed").count() == count
    recheck_domain(999999)  # a domain deleted after it was queued is not an error


def test_recheck_verifies_a_pending_domain_once_its_proof_appears(pending, dns_server):
    name, value = dnscheck.verification_record(pending)
    dns_server(txt=[f"{name},{value}"])
    recheck_domain(pending.pk)
    pending.refresh_from_db()
    assert pending.is_verified
