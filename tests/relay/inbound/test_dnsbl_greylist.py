"""The names a DNSBL is asked (RFC 5782) and the network greylisting keys a client by, without a server."""

from relay.inbound.dnsbl import listing_zone, query_name
from relay.inbound.greylist import client_network, triplet_key


def test_query_names_reverse_octets_and_nibbles():
    assert query_name("192.0.2.99", "bl.example.") == "99.2.0.192.bl.example"
    assert query_name("::ffff:192.0.2.99", "bl.example") == "99.2.0.192.bl.example"
    assert query_name("2001:db8::1", "bl.example") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example")


def test_no_zones_no_lookup():
    assert listing_zone("127.0.0.2", zones=[]) is None


def test_greylisting_keys_a_client_by_its_24_or_64():
    assert client_network("192.0.2.99") == "192.0.2.0/24"
    assert client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert triplet_key("192.0.2.1", "A@Example.org", "info@alpha.test") == \
        triplet_key("192.0.2.200", "a@example.org", "INFO@alpha.test")
    assert triplet_key("192.0.3.1", "a@example.org", "info@alpha.test") != \
        triplet_key("192.0.2.1", "a@example.org", "info@alpha.test")
