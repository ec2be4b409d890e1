"""A worker keeps what a domain's MX and address answers add up to for as long as their TTL allows."""

from collections import Counter

import pytest

from relay.delivery import routing

pytestmark = pytest.mark.django_db


@pytest.fixture
def lookups(monkeypatch):
    """The DNS look-ups routing makes, one (name, type) each."""
    made = []
    real = routing._resolve

    def counting(res, name, rdtype, **kwargs):
        made.append((name, rdtype))
        return real(res, name, rdtype, **kwargs)

    monkeypatch.setattr(routing, "_resolve", counting)
    return made


def test_a_route_within_the_ttl_of_its_answers_needs_no_lookup(dns_server, lookups):
    dns_server(mx=[f"kept.test,mx{i}.kept.test,10" for i in range(3)] + ["kept.test,backup.kept.test,20"],
               host=[f"mx{i}.kept.test,127.0.0.{i + 1}" for i in range(3)] + ["backup.kept.test,127.0.0.9"],
               raw=["--local-ttl=300"])
    first = routing.route("kept.test")
    asked = len(lookups)
    assert asked == 1 + 2 * 4  # MX, then A and AAAA of each exchange
    orders = Counter(tuple(h.address for h in routing.route("kept.test")) for _ in range(40))
    assert len(lookups) == asked
    assert len(orders) > 1, "equal preferences still in random order, message by message"
    assert all(sorted(order[:3]) == sorted(h.address for h in first[:3]) and order[3] == "127.0.0.9"
               for order in orders)


def test_answers_without_a_ttl_are_asked_for_again(dns_server, lookups):
    dns_server(mx=["fresh.test,mx.fresh.test,10"], host=["mx.fresh.test,127.0.0.1"])
    routing.route("fresh.test")
    routing.route("fresh.test")
    assert lookups == [("fresh.test", "MX"), ("mx.fresh.test", "A"), ("mx.fresh.test", "AAAA")] * 2


def test_a_failed_lookup_is_not_kept(dns_server, settings, lookups):
    settings.DELIVERY_ALLOW_PRIVATE = True
    dns_server(mx=["half.test,mx.half.test,10", "half.test,hang.example,20"], host=["mx.half.test,127.0.0.1"],
               silent=["hang.example"], raw=["--local-ttl=300"])
    settings.DNS_TIMEOUT = 0.5
    assert [h.host for h in routing.route("half.test")] == ["mx.half.test"]
    asked = len(lookups)
    routing.route("half.test")
    assert len(lookups) > asked, "the exchange whose lookup failed is asked again"
