"""Lists of IP networks (credential allow-lists, trusted proxies, who may read /metrics), parsed in one place."""

import ipaddress
from collections.abc import Iterable

from django.core.exceptions import ValidationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class InvalidNetwork(ValidationError, ValueError):
    """An entry that is not an IP address or network: a ValidationError for forms and services, a ValueError
    for code that parses configuration."""


def parse_networks(items: str | Iterable[str]) -> list[Network]:
    """Networks from a comma/space/newline separated text or from a list; a bare address is a /32 or /128."""
    if isinstance(items, str):
        items = items.replace(",", " ").split()
    networks = []
    for item in (str(item).strip() for item in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidNetwork(f"“{item}” is not an IP address or network (CIDR).", code="invalid") from None
    return networks


def address_in(address: str, networks: Iterable[Network]) -> bool:
    """Whether the address is in one of the networks; False for anything that is not an IP address."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)
