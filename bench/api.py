"""The REST API at scale: p50/p95 time and queries of every list and detail endpoint, for each kind of API key.

    .venv/bin/python bench/api.py --reuse --database-url postgres://postgres@127.0.0.1:5432/hm_api19
    .venv/bin/python bench/api.py --scale 0.02 --repeat 5 --database-url postgres://postgres@127.0.0.1:5432/hm_small

The data set is bench/panel.py's (`manage.py seed_scale` at full size: 1 000 resellers, 50 000 customers, 100 000
domains, 200 000 mailboxes, 100 000 messages), seeded when the database holds none (--reuse: never seed, stop if
it holds none). Each endpoint is requested --repeat times through Django's test Client with a support, a reseller
admin's and a customer's API key (made for the run, then deleted), as a billing system would, each request after
one of /healthz: the baseline, measured in step with the endpoint so that load from elsewhere weighs on both. It
prints p50/p95 in ms, the queries per request, p50 and p95 as ratios of the baseline's, and PASS or FAIL for the
target, p95 <= 50 ms at full size; then the queries of every list at page_size 10 and 100, PASS when they do not
grow; then one line for the whole run. Exit status 0 only when everything passes.
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.panel import (  # noqa: E402
    PREFIX, ensure_database, is_seeded, measure, parse_args, seed, setup_django)

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


def _reuse_option(parser) -> None:
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database as it is: stop if it holds no seeded data instead of seeding it")


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[18] if len(times) >= 2 else times[0]


def main(argv=None) -> int:
    args = parse_args(argv, doc=__doc__, extra=_reuse_option)
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    settings.API_RATE_LIMIT = None  # the bench measures the endpoints, not the limit
    call_command("migrate", verbosity=0)
    if args.reuse and not is_seeded():
        print(f"--reuse: {args.database_url.rsplit('/', 1)[-1]} holds no seeded data (run without --reuse to seed)")
        return 2
    counts = seed(args.scale)
    print(f"data set: {counts} (scale {args.scale})")
    clients = api_clients()
    rows = endpoints(clients)
    baseline = Client()
    baseline.get("/healthz")
    print(f"\n{'key':9} {'endpoint':20} {'status':>6} {'p50 ms':>7} {'p95 ms':>7} {'queries':>7} "
          f"{'base p50':>8} {'p50/base':>8} {'p95/base':>8}  target p95 <= {TARGET_P95_MS} ms")
    worst, growth, failures, passed, bases = 0.0, [], [], 0, []
    for kind, label, path, paginated in rows:
        client = clients[kind][0]
        client.get(path)  # warm caches and the connection
        times, base_times = [], []
        for _ in range(args.repeat):
            base_times += measure(baseline, "/healthz", 1)[0]
            took, queries, status = measure(client, path, 1)
            times += took
        p50, p95 = statistics.median(times), _p95(times)
        base50, base95 = statistics.median(base_times), _p95(base_times)
        bases.append(base50)
        worst = max(worst, p95)
        if status != 200:
            failures.append(f"{kind} {label}: HTTP {status}")
        ok = p95 <= TARGET_P95_MS and status == 200
        passed += ok
        print(f"{kind:9} {label:20} {status:>6} {p50:7.1f} {p95:7.1f} {queries:>7} {base50:8.1f} "
              f"{p50 / base50:8.1f} {p95 / base95:8.1f}  {'PASS' if ok else 'FAIL'}")
        if paginated:
            joiner = "&" if "?" in path else "?"
            growth.append((kind, label, *(measure(client, f"{path}{joiner}page_size={n}", 1)[1] for n in SIZES)))
    print(f"\nqueries by page size ({SIZES[0]} and {SIZES[1]} per page; must not grow):")
    grew = 0
    for kind, label, small, large in growth:
        grew += large > small
        print(f"  {kind:9} {label:20} {small:>3} {large:>3}  {'PASS' if large <= small else 'FAIL'}")
    from accounts.models import ApiKey
    ApiKey.objects.filter(name="bench api").delete()
    for failure in failures:
        print(f"not 200: {failure}")
    ok = passed == len(rows) and not grew
    print(f"\n{'PASS' if ok else 'FAIL'}: p95 <= {TARGET_P95_MS} ms on {passed} of {len(rows)} endpoints (worst "
          f"{worst:.1f} ms, {worst / TARGET_P95_MS:.2f} of the target); queries constant on {len(growth) - grew} of "
          f"{len(growth)} lists; baseline /healthz p50 {statistics.median(bases):.1f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
