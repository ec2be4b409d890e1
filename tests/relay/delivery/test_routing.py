"""MX routing against a real DNS server (dnsmasq on loopback)."""

from collections import Counter

import pytest

from relay.delivery import routing
from tests.support.delivery import DOWN, routes  # noqa: F401

pytestmark = pytest.mark.django_db


def test_mx_host_and_its_address(routes, settings):
    settings.DELIVERY_PORT = 2525
    assert routing.route("b.test") == [routing.Hop("mx1.b.test", "127.0.0.1", 2525)]


def test_lower_preference_first(routes):
    assert [(h.host, h.address) for h in routing.route("pair.test")] == [("down.pair.test", DOWN),
                                                                          ("up.pair.test", "127.0.0.1")]


def test_random_order_among_equal_preferences(dns_server):
    hosts = [f"mx{i}.eq.test" for i in range(4)] + ["last.eq.test"]
    dns_server(mx=[f"eq.test,{h},10" for h in hosts[:4]] + ["eq.test,last.eq.test,20"],
               host=[f"{h},127.0.0.1" for h in hosts])
    orders = Counter(tuple(hop.host for hop in routing.route("eq.test")) for _ in range(40))
    assert len(orders) > 1
    assert all(order[-1] == "last.eq.test" and sorted(order[:4]) == [f"mx{i}.eq.test" for i in range(4)]
               for order in orders)


def test_no_mx_falls_back_to_the_address_record(routes):
    assert [(h.host, h.address) for h in routing.route("amx.test")] == [("amx.test", "127.0.0.1")]


def test_ipv6_addresses_follow_ipv4_of_the_same_host(dns_server):
    dns_server(mx=["six.test,mx.six.test,10"], host=["mx.six.test,127.0.0.1,::1", "v6only.test,::1"])
    assert [h.address for h in routing.route("six.test")] == ["127.0.0.1", "::1"]
    assert [(h.host, h.address) for h in routing.route("v6only.test")] == [("v6only.test", "::1")]


def test_null_mx_is_permanent_5_1_10(routes):
    with pytest.raises(routing.RouteError) as error:
        routing.route("nullmx.test")
    assert error.value.permanent and error.value.status == "5.1.10"


def test_nxdomain_is_permanent_5_1_2(routes):
    with pytest.raises(routing.RouteError) as error:
        routing.route("nosuch.test")
    assert error.value.permanent and error.value.status == "5.1.2"


def test_a_name_that_never_answers_is_temporary(routes, settings):
    settings.DNS_TIMEOUT = 0.5
    with pytest.raises(routing.RouteError) as error:
        routing.route("hang.example")
    assert not error.value.permanent and error.value.status.startswith("4.")
    assert "timed out" in error.value.text


def test_refused_lookup_is_temporary(routes):
    # dnsmasq has no upstream for this name: REFUSED, which is not an answer either way.
    with pytest.raises(routing.RouteError) as error:
        routing.route("elsewhere.example")
    assert not error.value.permanent


def test_loopback_and_private_addresses_refused_unless_allowed(routes, settings):
    settings.DELIVERY_ALLOW_PRIVATE = False
    for domain in ("b.test", "private.test"):
        with pytest.raises(routing.RouteError) as error:
            routing.route(domain)
        assert error.value.permanent and error.value.status == "5.4.4"
    settings.DELIVERY_ALLOW_PRIVATE = True
    assert routing.route("private.test")[0].address == "10.255.255.1"


def test_public_address_allowed_but_own_address_refused(settings, monkeypatch):
    settings.DELIVERY_ALLOW_PRIVATE = False
    assert routing.allowed_address("192.0.43.8") is True
    monkeypatch.setattr(routing, "own_addresses", lambda: frozenset({"192.0.43.8"}))
    assert routing.allowed_address("192.0.43.8") is False
