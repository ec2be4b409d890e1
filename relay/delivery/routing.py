"""Where a recipient domain's mail goes: MX lookup (RFC 5321 5.1), null MX (RFC 7505), A/AAAA fallback.

Answers are hops (host name, address) in the order to try them: lowest preference first, random order among
equal preferences, every address of a host before the next host.
"""

import ipaddress
import random
import socket
import time
from dataclasses import dataclass
from functools import lru_cache

import dns.exception
import dns.name
import dns.resolver
from django.conf import settings

from accounts.dnscheck import resolver


@dataclass(frozen=True)
class Hop:
    host: str
    address: str
    port: int


class RouteError(Exception):
    """No hop to try: `permanent` failures bounce, the others are retried later."""

    def __init__(self, status: str, text: str, *, permanent: bool):
        super().__init__(text)
        self.status, self.text, self.permanent = status, text, permanent


def _resolve(res, name: str, rdtype: str, *, what: str, ttls: list | None = None) -> list:
    try:
        answer = res.resolve(name, rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        raise
    except dns.resolver.NoAnswer:
        return []
    except dns.exception.Timeout:
        raise RouteError("4.4.3", f"DNS lookup of {what} timed out", permanent=False) from None
    except (dns.resolver.NoNameservers, dns.exception.DNSException, OSError) as exc:
        raise RouteError("4.4.3", f"DNS lookup of {what} failed: {exc.__class__.__name__}", permanent=False) from None
    if ttls is not None:
        ttls.append(answer.expiration - time.time())  # what is left of it, when it came from the cache
    return list(answer)


def _exchanges(domain: str, res, ttls: list | None = None) -> list[list[str]]:
    """Exchange names by preference, lowest first; [[domain]] when there is no MX."""
    try:
        records = _resolve(res, domain, "MX", what=f"MX {domain}", ttls=ttls)
    except dns.resolver.NXDOMAIN:
        raise RouteError("5.1.2", f"Domain {domain} does not exist (NXDOMAIN)", permanent=True) from None
    if not records:
        return [[domain]]
    # RFC 7505: a single MX of preference 0 with the root as exchange says the domain takes no mail.
    if any(r.exchange == dns.name.root for r in records):
        raise RouteError("5.1.10", f"Domain {domain} accepts no mail (null MX)", permanent=True)
    by_preference: dict[int, list[str]] = {}
    for record in records:
        by_preference.setdefault(record.preference, []).append(record.exchange.to_text(omit_final_dot=True))
    return [by_preference[preference] for preference in sorted(by_preference)]


def host_addresses(host: str, *, res=None, ttls: list | None = None) -> list[str]:
    res = res or resolver()
    addresses = []
    for rdtype in ("A", "AAAA"):
        try:
            addresses += [r.address for r in _resolve(res, host, rdtype, what=f"{rdtype} {host}", ttls=ttls)]
        except dns.resolver.NXDOMAIN:
            break
    return addresses


@lru_cache(maxsize=1)
def own_addresses() -> frozenset[str]:
    """This machine's addresses and the relay's listeners: delivering there would loop."""
    found = set()
    for listen in (settings.RELAY_SUBMISSION_LISTEN, settings.RELAY_SMTPS_LISTEN):
        found.add(listen.rpartition(":")[0].strip("[]"))
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(info[4][0])
    except OSError:
        pass
    return frozenset(a for a in found if a and a not in ("0.0.0.0", "::"))


def allowed_address(address: str) -> bool:
    if settings.DELIVERY_ALLOW_PRIVATE:
        return True
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast and address not in own_addresses()


# Answers kept for their TTL by this process, as a local caching resolver would: a busy worker looks up the same
# few MX hosts again and again.
_cache = dns.resolver.LRUCache(max_size=10000)
# And what they add up to, per domain (exchanges by preference, each with its addresses or why it has none), for
# the shortest TTL among them: one dictionary look-up a message instead of three DNS look-ups, even cached ones.
_plans: dict[tuple, tuple[float, list[list[tuple[str, list[str] | RouteError]]]]] = {}
MAX_PLANS = 10000


def _plan(domain: str) -> list[list[tuple[str, list[str] | RouteError]]]:
    key = (domain, tuple(settings.DNS_NAMESERVERS), settings.DNS_PORT)
    now = time.monotonic()
    cached = _plans.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    res = resolver()
    res.cache = _cache
    ttls: list[float] = []
    plan = []
    for group in _exchanges(domain, res, ttls):
        entries = []
        for host in group:
            try:
                entries.append((host, host_addresses(host, res=res, ttls=ttls)))
            except RouteError as error:  # one exchange's lookup failed: the next one may still work
                entries.append((host, error))
                ttls.append(0)  # and this one is asked again next time
        plan.append(entries)
    ttl = min(ttls, default=0)
    if ttl >= 1:
        if len(_plans) >= MAX_PLANS:
            _plans.clear()
        _plans[key] = (now + ttl, plan)
    return plan


def route(domain: str) -> list[Hop]:
    """Hops for one recipient domain, or RouteError."""
    hops, lookup_error, refused = [], None, []
    for group in _plan(domain):
        for host, addresses in random.sample(group, len(group)):  # equal preferences in random order, every time
            if isinstance(addresses, RouteError):
                lookup_error = addresses
                continue
            for address in addresses:
                if allowed_address(address):
                    hops.append(Hop(host=host, address=address, port=settings.DELIVERY_PORT))
                else:
                    refused.append(f"{host}[{address}]")
    if hops:
        return hops
    if lookup_error is not None:
        raise lookup_error
    if refused:
        # Postfix says "mail for … loops back to myself" for the same case; a private MX will not fix itself.
        raise RouteError("5.4.4", f"No public address for the mail exchangers of {domain}: {', '.join(refused)}",
                         permanent=True)
    raise RouteError("5.4.4", f"The mail exchangers of {domain} have no address", permanent=True)
