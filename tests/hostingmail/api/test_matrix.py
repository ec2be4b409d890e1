"""Every API endpoint × every key kind (support, reseller, customer) × an object of the key's own tenant and of
another: the expected status, and no write to another tenant's object. Read-only keys get 403 on every write;
revoked, expired and wrong-network keys get 401 everywhere.

The routes are walked from the API's router, so a new endpoint this table does not know fails the test. Each
request runs in a savepoint that is rolled back, so a delete does not change what the next request sees.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services.aliases import alias_create
from accounts.services.api_keys import api_key_create
from accounts.services.credentials import credential_create
from accounts.services.webhooks import event_record, webhook_endpoint_create
from hostingmail.api.urls import router
from relay.models import QueuedMessage
from tests.support.permissions import rolled_back

pytestmark = pytest.mark.django_db

KINDS = ("support", "reseller", "customer")
NF = 404


@dataclass(frozen=True)
class X:
    """Expected status per key kind: an int for any object, or (own tenant's, other tenant's)."""

    support: int | tuple
    reseller: int | tuple
    customer: int | tuple

    def of(self, kind: str, own: bool) -> int:
        value = getattr(self, kind)
        return value if isinstance(value, int) else value[0 if own else 1]


def tenant(code: int, *, customer: int | tuple | None = None) -> X:
    return X(support=code, reseller=(code, NF), customer=(code, NF) if customer is None else customer)


SUPPORT_ONLY = X(support=200, reseller=403, customer=403)

# (method, route name) → (path arguments' object kind, body builder, expected)
TABLE = {
    ("get", "customer-list"): (None, None, X(200, 200, 200)),
    ("post", "customer-list"): (None, lambda o: {"name": "Newco", "username": "newco-admin",
                                                 "password": "a long enough password 9"}, X(403, 201, 403)),
    ("get", "customer-detail"): ("customer", None, tenant(200)),
    ("patch", "customer-detail"): ("customer", lambda o: {"name": "Renamed"}, tenant(200, customer=(403, NF))),
    ("delete", "customer-detail"): ("customer", None, tenant(204, customer=(403, NF))),
    ("post", "customer-suspend"): ("customer", lambda o: {"reason": "unpaid"}, tenant(200, customer=(403, NF))),
    # Active already: those who may restore learn it is not suspended (400).
    ("post", "customer-restore"): ("customer", lambda o: {"reason": "paid"}, tenant(400, customer=(403, NF))),
    ("get", "customer-usage"): ("customer", None, tenant(200)),
    ("post", "customer-login-links"): ("customer", lambda o: {"user": o["user"].pk}, tenant(201)),
    ("get", "user-list"): (None, None, X(200, 200, 200)),
    ("post", "user-list"): ("customer", lambda o: {"customer": o["customer"].pk, "username": "second-user",
                                                   "password": "a long enough password 9"},
                            tenant(201, customer=(403, NF))),
    ("get", "user-detail"): ("user", None, tenant(200)),
    # A customer's key sets its own user's password (the panel's own-password page); the cast's key is that user's.
    ("post", "user-password"): ("user", lambda o: {"password": "another long password 7"}, tenant(204)),
    ("get", "domain-list"): (None, None, X(200, 200, 200)),
    ("post", "domain-list"): ("customer", lambda o: {"name": "new-domain.test", "customer": o["customer"].pk},
                              tenant(201)),
    ("get", "domain-detail"): ("domain", None, tenant(200)),
    ("delete", "domain-detail"): ("domain", None, tenant(204)),
    ("post", "domain-check"): ("domain", None, tenant(200)),
    ("get", "mailbox-list"): (None, None, X(200, 200, 200)),
    ("post", "mailbox-list"): ("domain", lambda o: {"domain": o["domain"].pk, "local_part": "new",
                                                    "password": "a long enough password 9"}, tenant(201)),
    ("get", "mailbox-detail"): ("mailbox", None, tenant(200)),
    ("patch", "mailbox-detail"): ("mailbox", lambda o: {"display_name": "Renamed", "quota_mb": 50}, tenant(200)),
    ("delete", "mailbox-detail"): ("mailbox", None, tenant(204)),
    ("post", "mailbox-password"): ("mailbox", lambda o: {"password": "another long password 7"}, tenant(204)),
    ("get", "credential-list"): (None, None, X(200, 200, 200)),
    ("post", "credential-list"): ("mailbox", lambda o: {"mailbox": o["mailbox"].pk}, tenant(201)),
    ("get", "credential-detail"): ("credential", None, tenant(200)),
    ("post", "credential-revoke"): ("credential", lambda o: {}, tenant(200)),
    ("get", "alias-list"): (None, None, X(200, 200, 200)),
    ("post", "alias-list"): ("domain", lambda o: {"domain": o["domain"].pk, "local_part": "sales",
                                                  "destinations": [o["mailbox"].address]}, tenant(201)),
    ("get", "alias-detail"): ("alias", None, tenant(200)),
    ("patch", "alias-detail"): ("alias", lambda o: {"description": "the team"}, tenant(200)),
    ("delete", "alias-detail"): ("alias", None, tenant(204)),
    ("get", "message-list"): (None, None, X(200, 200, 200)),
    ("get", "message-stats"): (None, None, X(200, 200, 200)),
    ("get", "message-detail"): ("message", None, tenant(200)),
    # The panel's role gate: only support retries or cancels, whoever's message it is.
    ("post", "message-retry"): ("message", None, SUPPORT_ONLY),
    ("post", "message-cancel"): ("message", lambda o: {"reason": "spam"}, SUPPORT_ONLY),
    ("get", "webhook-list"): (None, None, X(200, 200, 200)),
    ("post", "webhook-list"): ("customer", lambda o: {"url": "https://hooks.example.net/new",
                                                      "customer": o["customer"].pk}, tenant(201)),
    ("get", "webhook-detail"): ("webhook", None, tenant(200)),
    ("delete", "webhook-detail"): ("webhook", None, tenant(204)),
    ("get", "webhook-deliveries"): ("webhook", None, tenant(200)),
    ("post", "webhook-redeliver"): ("webhook", lambda o: {"delivery": o["delivery"].pk}, tenant(202)),
}
HOME = {"reseller": "a", "customer": "a"}


def api_routes():
    """(method, route name, URL pattern) for every endpoint of the router."""
    for prefix, viewset, basename in router.registry:
        for route in router.get_routes(viewset):
            for method, action in route.mapping.items():
                if hasattr(viewset, action):
                    yield method, route.name.format(basename=basename), route.url.format(
                        prefix=prefix, lookup="{pk}", trailing_slash="/").lstrip("^").rstrip("$")


@pytest.fixture
def world(cast, keys, no_dns):
    objects = {}
    for name, t in (("a", cast.a), ("b", cast.b)):
        objects[name] = {
            "customer": t.customer, "user": t.user, "domain": t.domain, "mailbox": t.mailbox,
            "credential": credential_create(actor=None, domain=t.domain, mailbox=t.mailbox).credential,
            "alias": alias_create(actor=None, domain=t.domain, local_part="team", destinations=[t.mailbox.address]),
            "message": QueuedMessage.objects.create(customer=t.customer, domain=t.domain, mailbox=t.mailbox,
                                                    mail_from=t.mailbox.address, subject=f"hello from {name}"),
        }
        objects[name]["webhook"] = webhook_endpoint_create(actor=t.user, url=f"https://hooks.{name}.test/in").endpoint
        event_record(type="customer.restored", customer_id=t.customer.pk, payload={})
        objects[name]["delivery"] = objects[name]["webhook"].deliveries.get()
    clients = {kind: keys.client(f"{kind}_a" if kind != "support" else "support") for kind in KINDS}
    return {"objects": objects, "clients": clients}


def _call(client, method: str, url: str, body):
    return rolled_back(lambda: getattr(client, method)(url, body, content_type="application/json"))


def _url(path: str, kind: str | None, objects: dict) -> str:
    return "/api/v1/" + (path.replace("{pk}", str(objects[kind].pk)) if "{pk}" in path else path)


def test_the_table_knows_every_endpoint():
    routes = {(method, name) for method, name, _ in api_routes()}
    assert sorted(routes - set(TABLE)) == [], "endpoints missing from the API's authorization table"
    assert sorted(set(TABLE) - routes) == [], "the table names endpoints that no longer exist"


def test_every_endpoint_for_every_key_kind_and_tenant(world):
    failures = []
    for method, name, path in api_routes():
        path_kind, body, expected = TABLE[(method, name)]
        for tenant_name in ("a", "b") if path_kind else ("a",):
            objects = world["objects"][tenant_name]
            url = _url(path, path_kind, objects)
            data = body(objects) if body else None
            for kind in KINDS:
                own = kind == "support" or HOME[kind] == tenant_name
                want = expected.of(kind, own)
                response, wrote = _call(world["clients"][kind], method, url, data)
                where = f"{method.upper()} {url} as {kind} ({'own' if own else 'foreign'})"
                if response.status_code != want:
                    failures.append(f"{where}: {response.status_code} {response.content[:200]!r}, expected {want}")
                if not own and wrote:
                    failures.append(f"{where}: changed another tenant's object")
                if response.status_code >= 400:
                    error = response.json().get("error", {})
                    if not {"code", "message", "fields"} <= set(error):
                        failures.append(f"{where}: error body {response.content[:200]!r}")
    assert failures == [], "\n".join(failures)


def test_a_read_only_key_gets_403_on_every_write(world, keys):
    client = keys.client("customer_a_ro")
    objects = world["objects"]["a"]
    failures = []
    for method, name, path in api_routes():
        path_kind, body, _ = TABLE[(method, name)]
        url = _url(path, path_kind, objects)
        response, wrote = _call(client, method, url, body(objects) if body else None)
        want = 200 if method == "get" else 403
        if response.status_code != want or wrote:
            failures.append(f"{method.upper()} {url}: {response.status_code}, expected {want}, wrote={wrote}")
    assert failures == [], "\n".join(failures)


def _dead_keys(cast) -> dict[str, str]:
    revoked = api_key_create(actor=None, user=cast.a.user, name="revoked")
    ApiKey.objects.filter(pk=revoked.api_key.pk).update(revoked_at=timezone.now())
    expired = api_key_create(actor=None, user=cast.a.user, name="expired",
                             expires_at=timezone.now() + timedelta(seconds=30))
    ApiKey.objects.filter(pk=expired.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elsewhere = api_key_create(actor=None, user=cast.a.user, name="office only", allowed_networks="192.0.2.0/24")
    good = api_key_create(actor=None, user=cast.a.user, name="good")
    return {"revoked": revoked.secret, "expired": expired.secret, "wrong network": elsewhere.secret,
            "tampered": good.secret[:-2] + ("AA" if not good.secret.endswith("AA") else "BB"),
            "unknown": "hm_000000000000_" + "x" * 32, "not a key": "hello", "none": ""}


def test_revoked_expired_wrong_network_and_unknown_keys_get_401_everywhere(world, cast):
    objects = world["objects"]["a"]
    failures = []
    for reason, secret in _dead_keys(cast).items():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}") if secret else Client()
        for method, name, path in api_routes():
            path_kind, body, _ = TABLE[(method, name)]
            url = _url(path, path_kind, objects)
            response, wrote = _call(client, method, url, body(objects) if body else None)
            if response.status_code != 401 or wrote:
                failures.append(f"{reason}: {method.upper()} {url}: {response.status_code}, wrote={wrote}")
            elif response.json()["error"]["code"] != "not_authenticated" or "Bearer" not in response["WWW-Authenticate"]:
                failures.append(f"{reason}: {method.upper()} {url}: {response.content!r}")
    assert failures == [], "\n".join(failures)


def test_a_key_from_an_allowed_network_works(cast):
    new = api_key_create(actor=None, user=cast.a.user, name="office", allowed_networks="127.0.0.0/8")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {new.secret}").get("/api/v1/domains/")
    assert response.status_code == 200
    new.api_key.refresh_from_db()
    assert new.api_key.last_used_ip == "127.0.0.1" and new.api_key.last_used_at is not None


def test_a_suspended_customers_key_stops_working(cast, keys):
    from accounts.services.suspension import suspend
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    assert keys.client("customer_a").get("/api/v1/domains/").status_code == 401
