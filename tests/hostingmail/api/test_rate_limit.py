"""Requests per API key (API_RATE_LIMIT): over it 429 with Retry-After; one key's burst never slows another."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_do_not(keys, settings):
    settings.API_RATE_LIMIT = "3/minute"
    busy, other = keys.client("customer_a"), keys.client("customer_b")
    assert [busy.get("/api/v1/domains/").status_code for _ in range(3)] == [200, 200, 200]
    over = busy.get("/api/v1/domains/")
    assert over.status_code == 429 and over.json()["error"]["code"] == "throttled"
    assert 0 < int(over["Retry-After"]) <= 60
    assert other.get("/api/v1/domains/").status_code == 200
