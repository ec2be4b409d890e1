"""Panel pages at scale: p50/p95 time and queries of every list and search page, as each role.

    .venv/bin/python bench/panel.py                      # full size (seeds once: takes minutes)
    .venv/bin/python bench/panel.py --scale 0.02 --database-url postgres://postgres@127.0.0.1:5432/hm_bench_small

On a PostgreSQL database seeded by `manage.py seed_scale` (run here when the database holds no seeded data; the
message log is seeded here too, since accounts may not import relay), every page is requested --repeat times
through Django's test Client, as support staff (with a verified two-factor session), a reseller admin and a
customer user. It prints p50/p95 in ms and the queries per page, then compares the queries of each paginated
page at its smallest and largest page size: they must not grow. The target is p95 <= 100 ms at full size.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
FULL = {"resellers": 1000, "customers": 50000, "domains": 100000, "mailboxes": 200000, "messages": 100000}
PREFIX = "scale"
TARGET_P95_MS = 100


def parse_args(argv=None, *, doc: str = __doc__, extra=None):
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if extra is not None:
        extra(parser)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hm_bench")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full data set (default 1)")
    parser.add_argument("--repeat", type=int, default=20, help="requests per page (default 20)")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be above 0 and at most 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a PostgreSQL URL")
    return args


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostingmail.settings")
    os.environ.setdefault("VAR_DIR", "/tmp/hm-bench")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.DEBUG = False


def seed(scale: float) -> dict:
    from django.core.management import call_command

    counts = {k: max(1, int(v * scale)) for k, v in FULL.items()}
    if not is_seeded():
        started = time.monotonic()
        call_command("seed_scale", prefix=PREFIX, **{k: counts[k] for k in ("resellers", "customers", "domains",
                                                                              "mailboxes")})
        seed_messages(counts["messages"])
        seed_sending_history()
        print(f"seeded in {time.monotonic() - started:.0f} s")
        from django.db import connection

        with connection.cursor() as cursor:
            # What autovacuum leaves an insert-only table in: statistics, and a visibility map that lets a capped
            # COUNT(*) read the index alone.
            cursor.execute("VACUUM ANALYZE")
    return counts


def is_seeded() -> bool:
    from accounts.models import Reseller

    return Reseller.objects.filter(name__startswith=f"{PREFIX}-r").exists()


def seed_messages(total: int, batch: int = 5000) -> None:
    """Delivered messages (one recipient each) spread over the seeded customers' first mailboxes."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Mailbox
    from relay.models import QueuedMessage, Recipient

    boxes = list(Mailbox.objects.filter(domain__name__endswith=f".{PREFIX}.example")
                 .values_list("id", "local_part", "domain_id", "domain__name", "domain__customer_id")[:total])
    now = timezone.now()
    for start in range(0, total, batch):
        messages = []
        for i in range(start, min(start + batch, total)):
            box_id, local, domain_id, domain, customer_id = boxes[i % len(boxes)]
            sender = f"{local}@{domain}"
            messages.append(QueuedMessage(
                customer_id=customer_id, domain_id=domain_id, mailbox_id=box_id, mail_from=sender, header_from=sender,
                subject=f"Invoice {i}", size=2048, state=QueuedMessage.State.DELIVERED,
                created_at=now - timedelta(seconds=i * 7), finished_at=now))
        with transaction.atomic():
            QueuedMessage.objects.bulk_create(messages)
            Recipient.objects.bulk_create([
                Recipient(message=m, address=f"customer{n}@example.org", state=Recipient.State.DELIVERED,
                          last_code=250, delivered_at=now) for n, m in enumerate(messages)])
        print(f"  messages: {min(start + batch, total)}/{total}")


def seed_sending_history(batch: int = 20000) -> None:
    """One hourly total a day for 14 days per seeded customer: what the sending charts read."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Customer, SendUsage, SendUsageHourly

    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    ids = list(Customer.objects.filter(name__startswith=f"{PREFIX}-c").values_list("id", flat=True))
    rows = [SendUsageHourly(scope=SendUsage.Scope.CUSTOMER, scope_id=pk, hour=hour - timedelta(days=d, hours=2),
                            count=(pk + d) % 50) for pk in ids for d in range(1, 14)]
    for start in range(0, len(rows), batch):
        with transaction.atomic():
            SendUsageHourly.objects.bulk_create(rows[start:start + batch])
    print(f"  hourly sending totals: {len(rows)}")


def personas() -> dict:
    """The signed-in clients: support (two-factor verified), a reseller admin, a customer user."""
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    clients = {}
    for role, username in (("support", f"{PREFIX}-support"), ("reseller", f"{PREFIX}-r00001-admin"),
                           ("customer", f"{PREFIX}-c000001-user")):
        user = User.objects.get(username=username)
        client = Client()
        client.force_login(user)
        if role == "support":
            device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
            session = client.session
            session["otp_device_id"] = device.persistent_id
            session.save()
        clients[role] = (client, user)
    return clients


def pages(users: dict) -> list[tuple[str, str, str, tuple | None]]:
    """(role, label, url, (page-size parameter, small, large) or None) for every list and search page."""
    from django.urls import NoReverseMatch, reverse

    from accounts.models import Customer, Domain, Mailbox, SmtpCredential
    from relay.models import QueuedMessage

    customer = users["customer"][1].customer
    domain = Domain.objects.filter(customer=customer).first()
    mailbox = Mailbox.objects.filter(domain=domain).select_related("domain").first()
    credential = SmtpCredential.objects.filter(customer=customer).first()
    message = QueuedMessage.objects.filter(customer=customer).first()
    any_customer = Customer.objects.filter(name__startswith=f"{PREFIX}-c").order_by("-pk").first()
    messages_size = ("per_page", 25, 100)
    # Lists with a fixed page size: the bench sets the module's constant to 10, then 50.
    fixed_size = ("accounts.views.common.PAGE_SIZE", 10, 50)
    rows = []
    for role in ("support", "reseller", "customer"):
        rows += [
            (role, "dashboard", "dashboard", {}, None),
            (role, "domains", "domain_list", {}, fixed_size),
            (role, "mailboxes", "mailbox_list", {}, fixed_size),
            (role, "credentials", "credential_list", {}, fixed_size),
            (role, "messages", "relay:message_list", {}, messages_size),
            (role, "messages by sender", "relay:message_list", {"sender": mailbox.address}, messages_size),
            (role, "messages by recipient", "relay:message_list", {"recipient": "customer7@example.org"},
             messages_size),
            (role, "audit log", "security:audit_log", {}, ("accounts.views.audit.PAGE_SIZE", 10, 50)),
        ]
    rows += [
        ("support", "search: customer", "support:home", {"q": any_customer.name}, None),
        ("support", "search: domain", "support:home", {"q": domain.name}, None),
        ("support", "search: mailbox", "support:home", {"q": mailbox.address}, None),
        ("support", "search: credential", "support:home", {"q": credential.username if credential else "x"}, None),
        ("support", "search: queue id", "support:home", {"q": message.queue_id if message else "x"}, None),
        ("support", "customer page", "support:customer", {"args": [customer.pk]}, None),
        ("support", "lockouts", "relay:lockout_list", {}, None),
        ("reseller", "console", "reseller:home", {}, None),
        ("reseller", "customers", "reseller:customers", {}, ("per", 10, 50)),
        ("reseller", "customers by sent", "reseller:customers", {"sort": "-sent"}, ("per", 10, 50)),
        ("customer", "plan", "plan:home", {}, None),
    ]
    result = []
    for role, label, name, params, size in rows:
        args = params.pop("args", [])
        try:
            path = reverse(name, args=args)
        except NoReverseMatch:
            print(f"  (no page {name}: skipped)")
            continue
        result.append((role, label, path + (f"?{urlencode(params)}" if params else ""), size))
    return result


def measure(client, url: str, repeat: int) -> tuple[list[float], int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, status = [], 0, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        queries, status = len(ctx), response.status_code
    return times, queries, status


def queries_at_size(client, url: str, param: str, size: int) -> int:
    """Queries of one request showing `size` rows: a query parameter, or a module constant set for the call."""
    if "." not in param:
        return measure(client, f"{url}{'&' if '?' in url else '?'}{param}={size}", 1)[1]
    import importlib
    from unittest import mock

    module, name = param.rsplit(".", 1)
    with mock.patch.object(importlib.import_module(module), name, size):
        return measure(client, url, 1)[1]


def main(argv=None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    counts = seed(args.scale)
    print(f"data set: {counts} (scale {args.scale})")
    clients = personas()
    rows = pages(clients)
    # The baseline: the cheapest page that still goes through the whole stack (middleware, one query). On a busy
    # machine every figure grows with it; the ratio to it says what the page itself costs.
    from django.test import Client

    base_times = measure(Client(), "/healthz", args.repeat)[0]
    base = statistics.median(base_times)
    print(f"\nbaseline /healthz: p50 {base:.1f} ms")
    print(f"\n{'role':9} {'page':22} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'p50/base':>9}")
    worst, growth, failures = 0.0, [], []
    for role, label, url, size in rows:
        client = clients[role][0]
        client.get(url)  # warm caches and connection
        times, queries, status = measure(client, url, args.repeat)
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 2 else times[0]
        worst = max(worst, p95)
        flag = "" if p95 <= TARGET_P95_MS else "  > target"
        if status != 200:
            failures.append(f"{role} {label}: HTTP {status}")
        print(f"{role:9} {label:22} {status:>6} {p50:8.1f} {p95:8.1f} {queries:>8} {p50 / base:9.1f}{flag}")
        if size:
            param, small, large = size
            q_small = queries_at_size(client, url, param, small)
            q_large = queries_at_size(client, url, param, large)
            growth.append((role, label, small, q_small, large, q_large))
    print("\nqueries by page size (must not grow):")
    grew = False
    for role, label, small, q_small, large, q_large in growth:
        ok = q_large <= q_small
        grew |= not ok
        print(f"  {role:9} {label:22} {small:>3}/page: {q_small:>3}  {large:>3}/page: {q_large:>3}  "
              f"ratio {q_large / max(q_small, 1):.2f} {'ok' if ok else 'GREW'}")
    print(f"\nworst p95: {worst:.1f} ms (target {TARGET_P95_MS} ms at full size): "
          f"ratio {worst / TARGET_P95_MS:.2f} of the target")
    for failure in failures:
        print(f"not 200: {failure}")
    return 1 if grew or failures else 0


if __name__ == "__main__":
    sys.exit(main())
