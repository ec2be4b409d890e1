from dataclasses import dataclass

import pytest
from django.test import Client

from accounts.models import ApiKey
from accounts.services.api_keys import api_key_create


@dataclass
class Keys:
    """A read-write key for each role of the cast (and a read-only one for customer A), and clients sending them."""

    secrets: dict
    objects: dict

    def client(self, who: str) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {self.secrets[who]}")


@pytest.fixture
def keys(cast) -> Keys:
    users = {"support": cast.support, "reseller_a": cast.reseller_a_admin, "reseller_b": cast.reseller_b_admin,
             "customer_a": cast.a.user, "customer_b": cast.b.user}
    secrets, objects = {}, {}
    for who, user in users.items():
        new = api_key_create(actor=None, user=user, name=f"{who} billing")
        secrets[who], objects[who] = new.secret, new.api_key
    new = api_key_create(actor=None, user=cast.a.user, name="customer_a read-only", read_only=True)
    secrets["customer_a_ro"], objects["customer_a_ro"] = new.secret, new.api_key
    return Keys(secrets=secrets, objects=objects)


def api_key(keys: Keys, who: str) -> ApiKey:
    return keys.objects[who]


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    # The per-key request counts live in the cache: each test starts with none.
    from django.core.cache import cache
    cache.clear()


@pytest.fixture
def no_dns(settings):
    """DNS checks that fail fast (nothing listens there) instead of asking the machine's resolver."""
    settings.DNS_NAMESERVERS = ["127.0.0.1"]
    settings.DNS_PORT = 9
    settings.DNS_TIMEOUT = 0.2
