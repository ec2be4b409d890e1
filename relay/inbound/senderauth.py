"""Who sent an inbound message, as far as the DNS can prove it: SPF for the MAIL FROM and HELO identities
(pyspf), DKIM signatures (dkimpy), DMARC alignment and policy (authheaders), summed up in an
Authentication-Results header (RFC 8601) under the MX's own authserv-id.

All three libraries ask dnspython's default resolver; it is pointed at the configured DNS (DNS_NAMESERVERS,
DNS_PORT) before each check, so the MX and the tests' loopback DNS server agree with every other lookup. What is
computed from DNS answers (SPF verdicts, DMARC policies and verdicts) is kept as long as those answers are, and a
check whose answers are all kept can run without a lookup (verify_at_hand), on the MX's event loop.
"""

import functools
import importlib.resources
import math
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import getaddresses

import authheaders
import authheaders.dmarc_lookup
import dkim
import dns.exception
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import spf
from authheaders import check_dmarc
from authres import AuthenticationResultsHeader, DKIMAuthenticationResult, SPFAuthenticationResult
from dkim import rfc822_parse
from django.conf import settings

from accounts import dnscheck
from relay.inbound.rules import header_block

# pyspf's own default (20 s a query, RFC 7208 4.6.4 allows at least 20 s in all) is longer than an SMTP client
# waits for the reply to its final dot (RFC 5321 4.5.3.2.6: 10 minutes) only in theory; keep each lookup short.
SPF_QUERY_SECONDS = 10


_psl_lock = threading.Lock()


@functools.cache
def _public_suffix_list():
    with _psl_lock, importlib.resources.as_file(
            importlib.resources.files("authheaders") / "public_suffix_list.txt") as path, open(path) as file:
        return authheaders.dmarc_lookup.PublicSuffixList(file)


@functools.lru_cache(maxsize=16384)
def get_org_domain(domain: str) -> str:
    """The organizational domain (RFC 7489 3.2) from the public suffix list shipped with authheaders."""
    return _public_suffix_list().get_public_suffix(domain)


# authheaders reads and parses its whole public suffix list on every call of get_org_domain (0.3 s, three calls
# for each message: 3.7 messages/s in bench/mx.py); the same list, parsed once, for it and for us.
authheaders.get_org_domain = authheaders.dmarc_lookup.get_org_domain = get_org_domain


@dataclass
class Verdict:
    spf: str  # MAIL FROM identity (HELO's when MAIL FROM is <>)
    helo_spf: str
    dkim: list[tuple[str, str]] = field(default_factory=list)  # (result, d=)
    dmarc: str = "none"
    policy: str = ""  # the DMARC policy that applies to this message: none, quarantine, reject
    from_domain: str = ""
    header: str = ""  # "Authentication-Results: ...\r\n"

    @property
    def dkim_aligned_pass(self) -> bool:
        org = get_org_domain(self.from_domain) if self.from_domain else None
        return any(result == "pass" and org and get_org_domain(d) == org for result, d in self.dkim)

    @property
    def sender_authenticated(self) -> bool:
        """The envelope sender is proven (SPF pass) or the message carries an aligned DKIM pass: a DSN to it
        after acceptance reaches the real sender, not a forged one (no backscatter)."""
        return self.spf == "pass" or self.dkim_aligned_pass

    @property
    def action(self) -> str:
        return self.action_for(honour_reject=True)

    def action_for(self, *, honour_reject: bool) -> str:
        """accept, quarantine (deliver, filed as Junk) or reject (550 5.7.1 at the end of DATA). p=reject is
        honoured only when the recipients' domains ask for it (`honour_reject`) and MX_DMARC_REJECT is on; else the
        message is delivered and marked as for p=quarantine."""
        if self.dmarc != "fail":
            return "accept"
        if self.policy == "reject":
            return "reject" if honour_reject and settings.MX_DMARC_REJECT else "quarantine"
        return "quarantine" if self.policy == "quarantine" else "accept"


class _Lookups(threading.local):
    """What the DNS lookups of this thread's current check may do and what they used."""

    at_hand_only = False  # answers from the resolver's cache only (verify_at_hand)
    missed = False  # at_hand_only, and an answer was not in the cache
    expires = math.inf  # the earliest expiry of the answers used since _remembered started its computation
    lasting = True  # and none of them failed or was negative


_lookups = _Lookups()


class MxResolver(dns.resolver.Resolver):
    """The configured DNS, its answers kept for their TTL, and beside them the SPF verdicts, DMARC policies and
    DMARC verdicts reached from them."""

    def __init__(self, base: dns.resolver.Resolver):
        self.__dict__.update(base.__dict__)
        # Answers are kept for their TTL (as the local caching resolver an MTA relies on would): a sender's SPF,
        # DKIM key and DMARC policy are asked for again with each of its messages.
        self.cache = dns.resolver.LRUCache(8192)
        # What was reached from those answers (_remembered): {table: {key: (expiry, value)}}.
        self.remembered: dict[str, dict] = {"spf": {}, "dmarc": {}, "results": {}}
        self.lock = threading.Lock()

    def resolve(self, qname, rdtype=dns.rdatatype.A, rdclass=dns.rdataclass.IN, tcp=False, source=None,
                raise_on_no_answer=True, source_port=0, lifetime=None, search=None):
        lookups = _lookups
        try:
            if lookups.at_hand_only:
                answer = self._kept(qname, rdtype, rdclass, tcp, raise_on_no_answer, search)
            else:
                answer = super().resolve(qname, rdtype, rdclass, tcp, source, raise_on_no_answer, source_port,
                                         lifetime, search)
        except Exception:
            lookups.lasting = False
            raise
        lookups.expires = min(lookups.expires, answer.expiration)
        return answer

    def _kept(self, qname, rdtype, rdclass, tcp, raise_on_no_answer, search) -> dns.resolver.Answer:
        # dnspython's own first step of a lookup: the cache (a kept NXDOMAIN or NoAnswer raises), or the query
        # it would send, which is not sent.
        resolution = dns.resolver._Resolution(self, qname, rdtype, rdclass, tcp, raise_on_no_answer, search)
        request, answer = resolution.next_request()
        if answer is None:
            _lookups.missed = True
            raise dns.exception.Timeout
        return answer


@functools.lru_cache(maxsize=4)
def _resolver(nameservers: tuple[str, ...], port: int, timeout: float) -> MxResolver:
    return MxResolver(dnscheck.resolver())


def mx_resolver() -> MxResolver:
    """The MX's resolver: the configured DNS, answers kept for their TTL."""
    return _resolver(tuple(settings.DNS_NAMESERVERS), settings.DNS_PORT, settings.DNS_TIMEOUT)


def _use_configured_dns() -> MxResolver:
    dns.resolver.default_resolver = resolver = mx_resolver()
    return resolver


# Each of an MxResolver's tables of what was reached from its answers keeps at most this many entries.
REMEMBERED = 8192


def _remembered(resolver: MxResolver, table: str, key, compute):
    """compute()'s value, kept in the resolver's `table` until the first of the DNS answers it was reached with
    expires: while they are kept, computing it again from the same answers can only reach it again. A value
    that used a failed or negative answer, or a lookup not at hand (verify_at_hand), is not kept."""
    lookups = _lookups
    kept = resolver.remembered[table].get(key)
    if kept is not None and kept[0] > time.time():
        lookups.expires = min(lookups.expires, kept[0])  # a value computed from this one lasts no longer
        return kept[1]
    outer = lookups.expires, lookups.lasting
    lookups.expires, lookups.lasting = math.inf, True
    try:
        value = compute()
        expires, lasting = lookups.expires, lookups.lasting
    finally:
        lookups.expires, lookups.lasting = min(outer[0], lookups.expires), outer[1] and lookups.lasting
    if lasting and not lookups.missed and expires < math.inf:
        with resolver.lock:
            entries = resolver.remembered[table]
            if len(entries) >= REMEMBERED:
                entries.pop(next(iter(entries)))
            entries[key] = (expires, value)
    return value


def _spf(resolver: MxResolver, ip: str, sender: str, helo: str) -> tuple[str, str]:
    """pyspf's verdict for one identity, remembered for the same client, sender and HELO (evaluating the record
    costs 40-70 us of interpreter time, twice a message)."""
    def check():
        try:
            result, explanation = spf.check2(i=ip, s=sender, h=helo, timeout=SPF_QUERY_SECONDS,
                                             querytime=SPF_QUERY_SECONDS)
        except Exception as error:  # noqa: BLE001 -- a library fault must not refuse mail
            _lookups.lasting = False
            return "temperror", str(error)
        if result == "temperror":
            _lookups.lasting = False
        return (result or "none"), explanation

    return _remembered(resolver, "spf", (ip, sender, helo), check)


_receiver_record = authheaders.dmarc_lookup.receiver_record


def receiver_record(host: str, dnsfunc=authheaders.dmarc_lookup.dns_query):
    """authheaders' DMARC policy lookup, remembered per From domain by the MX's resolver (finding and parsing the
    TXT record was a third of the DMARC check)."""
    resolver = dns.resolver.get_default_resolver()
    if dnsfunc is not authheaders.dmarc_lookup.dns_query or not isinstance(resolver, MxResolver):
        return _receiver_record(host, dnsfunc)
    record, org_domain = _remembered(resolver, "dmarc", host, lambda: _receiver_record(host))
    return dict(record), org_domain


authheaders.receiver_record = receiver_record


_DKIM_SIGNATURE = re.compile(rb"^dkim-signature[ \t]*:", re.I | re.M)


def _dkim(content: bytes, head: bytes) -> list[DKIMAuthenticationResult]:
    count = len(_DKIM_SIGNATURE.findall(head))
    results = []
    for index in range(count):
        verifier = dkim.DKIM(content)
        try:
            result = "pass" if verifier.verify(idx=index) else "fail"
        except dkim.DnsTimeoutError:
            result = "temperror"
        except dkim.ValidationError:  # e.g. the body hash does not match: the signature fails (RFC 6376 6.1.3)
            result = "fail"
        except dkim.DKIMException:  # a malformed signature or key
            result = "permerror"
        except Exception:  # noqa: BLE001 -- a malformed signature is a failed one
            result = "fail"
        fields = verifier.signature_fields or {}
        results.append(DKIMAuthenticationResult(
            result=result, header_d=fields.get(b"d", b"").decode("ascii", "replace") or None,
            header_i=fields.get(b"i", b"").decode("ascii", "replace") or None))
    return results


_FROM = re.compile(r"^from[ \t]*:(.*(?:\r\n[ \t].*)*)", re.I | re.M)


def _from_domain(head: bytes) -> str:
    headers = head.decode("utf-8", "replace")
    return _domain_of(tuple(_FROM.findall(headers)))


@functools.lru_cache(maxsize=4096)
def _domain_of(from_values: tuple[str, ...]) -> str:
    # The email package's address parser costs more than the rest of the sender checks of a known sender.
    addresses = [a for _, a in getaddresses([v.replace("\r\n", "") for v in from_values]) if "@" in a]
    return addresses[0].rpartition("@")[2].lower() if len(addresses) == 1 else ""


def verify(content: bytes, *, client_ip: str, helo: str, mail_from: str) -> Verdict:
    """SPF, DKIM and DMARC of one message as received (before our own headers are added)."""
    resolver = _use_configured_dns()
    helo_is_name = bool(helo) and not helo.startswith("[") and "." in helo
    helo_result = _spf(resolver, client_ip, f"postmaster@{helo}", helo)[0] if helo_is_name else "none"
    if mail_from:
        mail_result, reason = _spf(resolver, client_ip, mail_from, helo)
    else:
        # RFC 7208 2.4: with a null sender, the HELO identity is the one checked.
        mail_result, reason = helo_result, ""
    spf_identity = mail_from or f"postmaster@{helo}"
    head = header_block(content)
    dkim_results = _dkim(content, head)
    verdict = Verdict(spf=mail_result, helo_spf=helo_result,
                      dkim=[(r.result, r.header_d or "") for r in dkim_results], from_domain=_from_domain(head))
    # The rest reads nothing else of the message: the same From fields with the same SPF and DKIM results reach the
    # same DMARC verdict and header while the DMARC policy's answer is kept (a sender's next messages).
    from_fields = tuple(value for name, value in rfc822_parse(head)[0] if name.lower() == b"from")
    key = (settings.MX_AUTHSERV_ID, from_fields, verdict.from_domain, mail_result, reason, spf_identity,
           helo if helo_is_name else None, helo_result,
           tuple((r.result, r.header_d, r.header_i) for r in dkim_results))
    verdict.dmarc, verdict.policy, verdict.header = _remembered(resolver, "results", key, lambda: _dmarc_and_header(
        head, verdict.from_domain, mail_result, reason, spf_identity, helo if helo_is_name else None, helo_result,
        dkim_results))
    return verdict


def _dmarc_and_header(head: bytes, from_domain: str, mail_result: str, reason: str, spf_identity: str,
                      helo: str | None, helo_result: str, dkim_results: list) -> tuple[str, str, str]:
    """(DMARC result, its policy, our Authentication-Results field)."""
    aligned = [r for r in dkim_results if r.result == "pass"]
    best_dkim = aligned[0] if aligned else (dkim_results[0] if dkim_results else None)
    if from_domain:
        org = get_org_domain(from_domain)
        aligned = [r for r in aligned if r.header_d and get_org_domain(r.header_d) == org]
        best_dkim = aligned[0] if aligned else best_dkim
    try:
        # DMARC reads only the header (its From:): given the whole message, authheaders split every line of the
        # body too, two thirds of its time for a 10 KB message.
        dmarc_result = check_dmarc(head, spf_result=SPFAuthenticationResult(result=mail_result,
                                                                              smtp_mailfrom=spf_identity),
                                   dkim_result=best_dkim)
        dmarc, policy = dmarc_result.result or "none", (dmarc_result.policy or "").lower()
    except Exception:  # noqa: BLE001 -- a DNS failure for the policy: no verdict, deliver unmarked
        _lookups.lasting = False
        dmarc_result, dmarc, policy = None, "temperror", ""
    results = [SPFAuthenticationResult(result=mail_result, smtp_mailfrom=spf_identity, reason=reason or None)]
    if helo is not None:
        results.append(SPFAuthenticationResult(result=helo_result, smtp_helo=helo))
    results += dkim_results or [DKIMAuthenticationResult(result="none")]
    if dmarc_result is not None:
        results.append(dmarc_result)
    header = str(AuthenticationResultsHeader(authserv_id=settings.MX_AUTHSERV_ID, results=results))
    return dmarc, policy, _folded(header) + "\r\n"


def verify_at_hand(content: bytes, *, client_ip: str, helo: str, mail_from: str) -> Verdict | None:
    """verify() when every DNS answer it needs is already kept by the MX's resolver, without a lookup (so without
    a wait: the event loop may call it); None when one is not, and then verify() must run where it may wait."""
    lookups = _lookups
    lookups.at_hand_only = True
    try:
        verdict = verify(content, client_ip=client_ip, helo=helo, mail_from=mail_from)
    finally:
        missed, lookups.at_hand_only, lookups.missed = lookups.missed, False, False
    return None if missed else verdict


def _folded(header: str) -> str:
    # One line per method (RFC 8601 2.2 allows folding between resinfo clauses); lines stay under 998 octets.
    return re.sub(r";\s+(?=(spf|dkim|dmarc)=)", ";\r\n\t", header)


_RESULTS_FIELD = re.compile(rb"^authentication-results[ \t]*:", re.I | re.M)


def strip_own_results(content: bytes, authserv_id: str | None = None) -> bytes:
    """The message without Authentication-Results fields claiming our authserv-id (RFC 8601 5: a receiver must
    remove them, or a sender could forge our verdict)."""
    head = header_block(content)
    if not _RESULTS_FIELD.search(head):  # none at all (most messages): the content as it is, not copied
        return content
    authserv_id = (authserv_id or settings.MX_AUTHSERV_ID).lower().encode()
    lines = head.split(b"\r\n")
    kept, dropping = [], False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = False
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"authentication-results":
            # The authserv-id is the first token, possibly after comments (RFC 8601 2.2).
            first = re.sub(rb"\([^)]*\)", b"", value).strip().split(b";", 1)[0].split()
            if first and first[0].lower() == authserv_id:
                dropping = True
                continue
        kept.append(line)
    return b"\r\n".join(kept) + content[len(head):]
