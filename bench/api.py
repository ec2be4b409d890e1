"""The REST API at scale: p50/p95 time and queries of every list and detail endpoint, for each kind of API key.

    .venv/bin/python bench/api.py --database-url postgres://postgres@127.0.0.1:5432/hm_api19
    .venv/bin/python bench/api.py --scale 0.02 --repeat 5 --database-url postgres://postgres@127.0.0.1:5432/hm_small

The data set is bench/panel.py's (`manage.py seed_scale` at full size: 1 000 resellers, 50 000 customers, 100 000
domains, 200 000 mailboxes, 100 000 messages), seeded when the database holds none. Each endpoint is requested
--repeat times through Django's test Client with a support, a reseller admin's and a customer's API key (made
for the run, then deleted), as a billing system would. It prints p50/p95 in ms and the queries per request, the
ratio of p50 to a baseline measured in the same run (/healthz), then the queries of every list at page_size 10
and 100: they must not grow. The target is p95 <= 50 ms at full size.
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.panel import PREFIX, ensure_database, measure, parse_args, seed, setup_django  # noqa: E402

TARGET_P95_MS = 50
SIZES = (10, 100)


def api_clients() -> dict:
    """(client, user) per key kind: support, a reseller admin, a customer user; keys named for this bench."""
    from django.test import Client

    from accounts.models import ApiKey, User
    from accounts.services.api_keys import api_key_create

    ApiKey.objects.filter(name="bench api").delete()
    clients = {}
    for kind, username in (("support", f"{PREFIX}-support"), ("reseller", f"{PREFIX}-r00001-admin"),
                           ("customer", f"{PREFIX}-c000001-user")):
        user = User.objects.get(username=username)
        new = api_key_create(actor=None, user=user, name="bench api")
        clients[kind] = (Client(HTTP_AUTHORIZATION=f"Bearer {new.secret}"), user)
    return clients


def endpoints(clients: dict) -> list[tuple[str, str, str, bool]]:
    """(key kind, label, path, paginated) for every list and detail endpoint, with objects the key may see."""
    from accounts import selectors
    from relay.panel.selectors import messages_visible_to

    rows = []
    for kind, (_, user) in clients.items():
        customer = selectors.customers_visible_to(user).order_by("pk").first()
        domain = selectors.domains_visible_to(user).order_by("pk").first()
        mailbox = selectors.mailboxes_visible_to(user).order_by("pk").first()
        credential = selectors.credentials_visible_to(user).order_by("pk").first()
        panel_user = selectors.panel_users_visible_to(user).order_by("pk").first()
        message = messages_visible_to(user).order_by("-pk").first()
        rows += [
            (kind, "customers", "/api/v1/customers/", True),
            (kind, "customer", f"/api/v1/customers/{customer.pk}/", False),
            (kind, "customer usage", f"/api/v1/customers/{customer.pk}/usage/", False),
            (kind, "domains", "/api/v1/domains/", True),
            (kind, "domain", f"/api/v1/domains/{domain.pk}/", False),
            (kind, "mailboxes", "/api/v1/mailboxes/", True),
            (kind, "mailbox", f"/api/v1/mailboxes/{mailbox.pk}/", False),
            (kind, "credentials", "/api/v1/credentials/", True),
            (kind, "aliases", "/api/v1/aliases/", True),
            (kind, "users", "/api/v1/users/", True),
            (kind, "user", f"/api/v1/users/{panel_user.pk}/", False),
            (kind, "messages", "/api/v1/messages/", True),
            (kind, "messages by sender", f"/api/v1/messages/?sender={mailbox.address}", True),
            (kind, "message stats", "/api/v1/messages/stats/", False),
            (kind, "webhooks", "/api/v1/webhooks/", True),
        ]
        if credential is not None:
            rows.append((kind, "credential", f"/api/v1/credentials/{credential.pk}/", False))
        if message is not None:
            rows.append((kind, "message", f"/api/v1/messages/{message.pk}/", False))
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    settings.API_RATE_LIMIT = None  # the bench measures the endpoints, not the limit
    call_command("migrate", verbosity=0)
    counts = seed(args.scale)
    print(f"data set: {counts} (scale {args.scale})")
    clients = api_clients()
    rows = endpoints(clients)
    base = statistics.median(measure(Client(), "/healthz", args.repeat)[0])
    print(f"\nbaseline /healthz: p50 {base:.1f} ms")
    print(f"\n{'key':9} {'endpoint':20} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'p50/base':>9}")
    worst, growth, failures = 0.0, [], []
    for kind, label, path, paginated in rows:
        client = clients[kind][0]
        client.get(path)  # warm caches and the connection
        times, queries, status = measure(client, path, args.repeat)
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 2 else times[0]
        worst = max(worst, p95)
        if status != 200:
            failures.append(f"{kind} {label}: HTTP {status}")
        flag = "" if p95 <= TARGET_P95_MS else "  > target"
        print(f"{kind:9} {label:20} {status:>6} {p50:8.1f} {p95:8.1f} {queries:>8} {p50 / base:9.1f}{flag}")
        if paginated:
            joiner = "&" if "?" in path else "?"
            growth.append((kind, label, *(measure(client, f"{path}{joiner}page_size={n}", 1)[1] for n in SIZES)))
    print(f"\nqueries by page size ({SIZES[0]} and {SIZES[1]} per page; must not grow):")
    grew = False
    for kind, label, small, large in growth:
        grew |= large > small
        print(f"  {kind:9} {label:20} {small:>3} {large:>3} {'ok' if large <= small else 'GREW'}")
    print(f"\nworst p95: {worst:.1f} ms (target {TARGET_P95_MS} ms at full size): "
          f"ratio {worst / TARGET_P95_MS:.2f} of the target")
    from accounts.models import ApiKey
    ApiKey.objects.filter(name="bench api").delete()
    for failure in failures:
        print(f"not 200: {failure}")
    return 1 if grew or failures or worst > TARGET_P95_MS else 0


if __name__ == "__main__":
    sys.exit(main())
