"""Who sent an inbound message, as far as the DNS can prove it: SPF for the MAIL FROM and HELO identities
(pyspf), DKIM signatures (dkimpy), DMARC alignment and policy (authheaders), summed up in an
Authentication-Results header (RFC 8601) under the MX's own authserv-id.

All three libraries ask dnspython's default resolver; it is pointed at the configured DNS (DNS_NAMESERVERS,
DNS_PORT) before each check, so the MX and the tests' loopback DNS server agree with every other lookup.
"""

import functools
import importlib.resources
import re
import threading
from dataclasses import dataclass, field
from email.utils import getaddresses

import authheaders
import authheaders.dmarc_lookup
import dkim
import dns.resolver
import spf
from authheaders import check_dmarc
from authres import AuthenticationResultsHeader, DKIMAuthenticationResult, SPFAuthenticationResult
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


@functools.lru_cache(maxsize=4)
def _resolver(nameservers: tuple[str, ...], port: int, timeout: float) -> dns.resolver.Resolver:
    resolver = dnscheck.resolver()
    # Answers are kept for their TTL (as the local caching resolver an MTA relies on would): a sender's SPF,
    # DKIM key and DMARC policy are asked for again with each of its messages.
    resolver.cache = dns.resolver.LRUCache(8192)
    return resolver


def mx_resolver() -> dns.resolver.Resolver:
    """The MX's resolver: the configured DNS, answers kept for their TTL."""
    return _resolver(tuple(settings.DNS_NAMESERVERS), settings.DNS_PORT, settings.DNS_TIMEOUT)


def _use_configured_dns() -> None:
    dns.resolver.default_resolver = mx_resolver()


def _spf(ip: str, sender: str, helo: str) -> tuple[str, str]:
    try:
        result, explanation = spf.check2(i=ip, s=sender, h=helo, timeout=SPF_QUERY_SECONDS,
                                         querytime=SPF_QUERY_SECONDS)
    except Exception as error:  # noqa: BLE001 -- a library fault must not refuse mail
        return "temperror", str(error)
    return (result or "none"), explanation


def _dkim(content: bytes, head: bytes) -> list[DKIMAuthenticationResult]:
    count = len(re.findall(rb"^dkim-signature[ \t]*:", head, re.I | re.M))
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


def _from_domain(head: bytes) -> str:
    headers = head.decode("utf-8", "replace")
    values = re.findall(r"^from[ \t]*:(.*(?:\r\n[ \t].*)*)", headers, re.I | re.M)
    addresses = [a for _, a in getaddresses([v.replace("\r\n", "") for v in values]) if "@" in a]
    return addresses[0].rpartition("@")[2].lower() if len(addresses) == 1 else ""


def verify(content: bytes, *, client_ip: str, helo: str, mail_from: str) -> Verdict:
    """SPF, DKIM and DMARC of one message as received (before our own headers are added)."""
    _use_configured_dns()
    helo_is_name = bool(helo) and not helo.startswith("[") and "." in helo
    helo_result = _spf(client_ip, f"postmaster@{helo}", helo)[0] if helo_is_name else "none"
    if mail_from:
        mail_result, reason = _spf(client_ip, mail_from, helo)
    else:
        # RFC 7208 2.4: with a null sender, the HELO identity is the one checked.
        mail_result, reason = helo_result, ""
    spf_identity = mail_from or f"postmaster@{helo}"
    spf_result = SPFAuthenticationResult(result=mail_result, smtp_mailfrom=spf_identity,
                                         reason=reason or None)
    head = header_block(content)
    dkim_results = _dkim(content, head)
    verdict = Verdict(spf=mail_result, helo_spf=helo_result,
                      dkim=[(r.result, r.header_d or "") for r in dkim_results], from_domain=_from_domain(head))
    aligned = [r for r in dkim_results if r.result == "pass"]
    best_dkim = aligned[0] if aligned else (dkim_results[0] if dkim_results else None)
    if verdict.from_domain:
        org = get_org_domain(verdict.from_domain)
        aligned = [r for r in aligned if r.header_d and get_org_domain(r.header_d) == org]
        best_dkim = aligned[0] if aligned else best_dkim
    try:
        # DMARC reads only the header (its From:): given the whole message, authheaders split every line of the
        # body too, two thirds of its time for a 10 KB message.
        dmarc_result = check_dmarc(head, spf_result=SPFAuthenticationResult(result=mail_result,
                                                                              smtp_mailfrom=spf_identity),
                                   dkim_result=best_dkim)
        verdict.dmarc, verdict.policy = dmarc_result.result or "none", (dmarc_result.policy or "").lower()
    except Exception:  # noqa: BLE001 -- a DNS failure for the policy: no verdict, deliver unmarked
        dmarc_result, verdict.dmarc = None, "temperror"
    results = [spf_result]
    if helo_is_name:
        results.append(SPFAuthenticationResult(result=helo_result, smtp_helo=helo))
    results += dkim_results or [DKIMAuthenticationResult(result="none")]
    if dmarc_result is not None:
        results.append(dmarc_result)
    header = str(AuthenticationResultsHeader(authserv_id=settings.MX_AUTHSERV_ID, results=results))
    verdict.header = _folded(header) + "\r\n"
    return verdict


def _folded(header: str) -> str:
    # One line per method (RFC 8601 2.2 allows folding between resinfo clauses); lines stay under 998 octets.
    return re.sub(r";\s+(?=(spf|dkim|dmarc)=)", ";\r\n\t", header)


def strip_own_results(content: bytes, authserv_id: str | None = None) -> bytes:
    """The message without Authentication-Results fields claiming our authserv-id (RFC 8601 5: a receiver must
    remove them, or a sender could forge our verdict)."""
    authserv_id = (authserv_id or settings.MX_AUTHSERV_ID).lower().encode()
    head = header_block(content)
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
