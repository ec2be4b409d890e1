"""Requests per API key (API_RATE_LIMIT): over it 429 with Retry-After; one key's burst never slows another; with
a shared cache (CACHE_URL=redis://...) every API process counts against one budget per key."""

import json
import os
import subprocess
import sys

import pytest

from hostingmail.api.throttling import ApiKeyThrottle
from tests.support.relays import ROOT, child_env
from tests.support.workers import require_redis

REDIS_CACHE_URL = os.environ.get("TEST_REDIS_CACHE_URL", "redis://127.0.0.1:6379/3")
# The throttle's clock for the tests with an hour's budget, stopped half way through an hour: the counting window
# cannot end in the middle of a test, whatever the time of day.
CLOCK = 1_800_000_000 // 3600 * 3600 + 1800


@pytest.fixture
def stopped_clock(monkeypatch):
    monkeypatch.setattr(ApiKeyThrottle, "timer", staticmethod(lambda: CLOCK))


@pytest.mark.django_db
def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_do_not(keys, settings):
    settings.API_RATE_LIMIT = "3/minute"
    busy, other = keys.client("customer_a"), keys.client("customer_b")
    assert [busy.get("/api/v1/domains/").status_code for _ in range(3)] == [200, 200, 200]
    over = busy.get("/api/v1/domains/")
    assert over.status_code == 429 and over.json()["error"]["code"] == "throttled"
    assert 0 < int(over["Retry-After"]) <= 60
    assert other.get("/api/v1/domains/").status_code == 200


@pytest.mark.django_db
def test_a_cache_that_is_down_lets_requests_through(keys, settings):
    settings.API_RATE_LIMIT = "1/minute"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}  # nothing listens on the discard port
    client = keys.client("customer_a")
    assert [client.get("/api/v1/domains/").status_code for _ in range(2)] == [200, 200]


def _other_process(secret: str, count: int, rate: str) -> list[int]:
    done = subprocess.run([sys.executable, "-m", "tests.support.api_burst", secret, str(count), "/api/v1/domains/",
                           str(CLOCK)], cwd=ROOT, env=child_env(CACHE_URL=REDIS_CACHE_URL, API_RATE_LIMIT=rate),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_two_api_processes_sharing_redis_share_one_keys_budget(keys, settings, stopped_clock):
    require_redis(REDIS_CACHE_URL)
    from django.core.cache import cache

    rate = "5/hour"
    settings.API_RATE_LIMIT = rate
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": REDIS_CACHE_URL}}
    cache.clear()
    here, other = keys.client("customer_a"), keys.client("customer_b")
    assert [here.get("/api/v1/domains/").status_code for _ in range(3)] == [200, 200, 200]
    # The second process sees the three requests this one answered: two left of five.
    assert _other_process(keys.secrets["customer_a"], 3, rate) == [200, 200, 429]
    assert here.get("/api/v1/domains/").status_code == 429
    # Another key's budget is its own, in either process, whatever the first key spent.
    assert _other_process(keys.secrets["customer_b"], 4, rate) == [200, 200, 200, 200]
    assert other.get("/api/v1/domains/").status_code == 200
    assert other.get("/api/v1/domains/").status_code == 429
    cache.clear()


def test_racing_requests_of_one_key_never_exceed_its_budget(settings, stopped_clock):
    """The count is one atomic increment in the shared cache: 40 requests at once for a budget of 10 let exactly
    10 through (a read-then-write count lets the racers that read the same count all pass)."""
    require_redis(REDIS_CACHE_URL)
    from threading import Barrier, Thread
    from types import SimpleNamespace

    from django.core.cache import cache

    settings.API_RATE_LIMIT = "10/hour"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": REDIS_CACHE_URL}}
    cache.clear()
    request = SimpleNamespace(auth=SimpleNamespace(pk=987654321), META={"REMOTE_ADDR": "127.0.0.1"})
    barrier, allowed = Barrier(40), []

    def one():
        throttle = ApiKeyThrottle()
        barrier.wait()
        allowed.append(throttle.allow_request(request, None))

    threads = [Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(allowed) == 40 and allowed.count(True) == 10
    cache.clear()
