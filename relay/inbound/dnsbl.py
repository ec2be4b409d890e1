"""DNS blocklists (DNSBL, RFC 5782) of the connecting address, asked at the first RCPT of a session.

At RCPT rather than at connect, as Postfix's smtpd does with reject_rbl_client among its recipient restrictions:
the refusal is logged with a sender and a recipient, a client that never gets as far costs no lookup, and a
refused client is not left wondering why its connection dropped. The zones are MX_DNSBL_ZONES (none: off). A
listed address gets `554 5.7.1` naming the list; a lookup that fails (timeout, SERVFAIL) lets the mail in:
a broken list must not stop the provider's inbound mail.
"""

import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.resolver
from django.conf import settings

from relay.inbound.senderauth import mx_resolver
from relay.submission.policy import Reject

log = logging.getLogger("relay.inbound")
LISTED = ipaddress.ip_network("127.0.0.0/8")


def query_name(client_ip: str, zone: str) -> str:
    """RFC 5782 2.1 (IPv4: octets reversed) and 2.4 (IPv6: nibbles reversed) under the list's zone."""
    address = ipaddress.ip_address(client_ip)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.reverse_pointer.rsplit(".", 2)[0] + "." + zone.strip(".")


def _listed(resolver: dns.resolver.Resolver, client_ip: str, zone: str) -> bool:
    try:
        answer = resolver.resolve(query_name(client_ip, zone), "A", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return False
    except (dns.exception.DNSException, OSError, ValueError) as error:
        log.warning("DNSBL %s lookup of %s failed (%s); not refusing", zone, client_ip, type(error).__name__)
        return False
    # Lists answer 127.0.0.x when listed; anything else (a hijacked or expired zone) is not a listing.
    return any(ipaddress.ip_address(r.address) in LISTED for r in answer)


def listing_zone(client_ip: str, zones: list[str] | None = None) -> str | None:
    """The first of the zones (in their order) that lists the address (RFC 5782 2.1.1), or None. The lists are
    asked at once, so a session waits for the slowest of them, not for their sum."""
    zones = settings.MX_DNSBL_ZONES if zones is None else zones
    if not zones or not client_ip:
        return None
    resolver = mx_resolver()
    if len(zones) == 1:
        return zones[0] if _listed(resolver, client_ip, zones[0]) else None
    with ThreadPoolExecutor(max_workers=len(zones), thread_name_prefix="dnsbl") as pool:
        listed = list(pool.map(lambda zone: _listed(resolver, client_ip, zone), zones))
    return next((zone for zone, hit in zip(zones, listed) if hit), None)


def check_client(client_ip: str) -> None:
    """Reject (554 5.7.1, the list named, as Postfix words it) when a configured list names the address."""
    zone = listing_zone(client_ip)
    if zone is not None:
        raise Reject(f"554 5.7.1 Service unavailable; client host [{client_ip}] blocked using {zone}", "dnsbl")
