"""relay.inbound.rules: paths, the recipient cache of an MX process."""

import pytest

from relay.inbound import rules
from relay.inbound.rules import Accepted, Destination, RouteCache, recipient_path
from relay.submission.policy import Reject


def accepted(address="info@alpha.test", free=None) -> Accepted:
    return Accepted(address, (Destination(1, address, 1),), (), free=free)


def test_route_cache_keeps_deliverable_recipients_for_its_seconds(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rules.time, "monotonic", lambda: now[0])
    cache = RouteCache(0.2)
    cache.follow(7)
    cache.put(accepted(), 7)
    now[0] += 0.19
    assert cache.get("info@alpha.test", None) == accepted()
    now[0] += 0.02
    assert cache.get("info@alpha.test", None) is None


def test_route_cache_asks_again_when_a_declared_size_may_not_fit():
    cache = RouteCache(5)
    cache.follow(7)
    cache.put(accepted(free=1000), 7)
    assert cache.get("info@alpha.test", 999) is not None
    assert cache.get("info@alpha.test", 1001) is None


def test_route_cache_off():
    cache = RouteCache(0)
    cache.follow(7)
    cache.put(accepted(), 7)
    assert cache.get("info@alpha.test", None) is None


def test_route_cache_forgets_everything_when_the_route_generation_moves():
    cache = RouteCache(3600)
    cache.follow(7)
    cache.put(accepted(), 7)
    cache.follow(7)
    assert cache.get("info@alpha.test", None) == accepted()
    cache.follow(8)
    assert cache.get("info@alpha.test", None) is None


def test_route_cache_keeps_no_lookup_made_for_a_transaction_older_than_the_last_change():
    cache = RouteCache(3600)
    cache.follow(8)
    cache.put(accepted(), 7)  # looked up for a transaction that read the generation before the change
    assert cache.get("info@alpha.test", None) is None


@pytest.mark.parametrize("path", ["<a%b@c.test>", "<@x.test:a@c.test>", '<"a"@c.test>', "<a@[10.0.0.1]>"])
def test_relay_tricks_are_relay_access_denied(path):
    with pytest.raises(Reject) as refused:
        recipient_path(path, smtputf8=False)
    assert refused.value.reply == "554 5.7.1 Relay access denied"
