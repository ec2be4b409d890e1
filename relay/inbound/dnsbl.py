"""DNS blocklists (DNSBL, RFC 5782) of the connecting address, asked at the first RCPT of a session.

At RCPT rather than at connect, as Postfix's smtpd does with reject_rbl_client among its recipient restrictions:
the refusal is logged with a sender and a recipient, a client that never gets as far costs no lookup, and a
refused client is not left wondering why its connection dropped. The zones are MX_DNSBL_ZONES (none: off). A
listed address gets `554 5.7.1` naming the list; a lookup that fails (timeout, SERVFAIL) lets the mail in:
a broken list must not stop the provider's inbound mail.
"""

import ipaddress
import logging

import dns.exception
import dns.resolver
from django.conf import settings

from relay.inbound.senderauth import mx_resolver
from relay.submission.policy import Reject

log = logging.getLogger("relay.inbound")


def query_name(client_ip: str, zone: str) -> str:
    """RFC 5782 2.1 (IPv4: octets reversed) and 2.4 (IPv6: nibbles reversed) under the list's zone."""
    address = ipaddress.ip_address(client_ip)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.reverse_pointer.rsplit(".", 2)[0] + "." + zone.strip(".")


def listing_zone(client_ip: str, zones: list[str] | None = None) -> str | None:
    """The first of the zones that lists the address (an A record in 127.0.0.0/8, RFC 5782 2.1.1), or None."""
    zones = settings.MX_DNSBL_ZONES if zones is None else zones
    if not zones or not client_ip:
        return None
    resolver = mx_resolver()
    for zone in zones:
        try:
            answer = resolver.resolve(query_name(client_ip, zone), "A", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except (dns.exception.DNSException, OSError, ValueError) as error:
            log.warning("DNSBL %s lookup of %s failed (%s); not refusing", zone, client_ip, type(error).__name__)
            continue
        # Lists answer 127.0.0.x when listed; anything else (a hijacked or expired zone) is not a listing.
        if any(ipaddress.ip_address(r.address) in ipaddress.ip_network("127.0.0.0/8") for r in answer):
            return zone
    return None


def check_client(client_ip: str) -> None:
    """Reject (554 5.7.1, the list named, as Postfix words it) when a configured list names the address."""
    zone = listing_zone(client_ip)
    if zone is not None:
        raise Reject(f"554 5.7.1 Service unavailable; client host [{client_ip}] blocked using {zone}", "dnsbl")
