"""PostgreSQL's CPU for each message the relay accepts: relay.submission.accept.accept_messages replayed in batches.

    .venv/bin/python bench/accept_db.py --database-url postgres://postgres@127.0.0.1:5432/hm --batch 1,2,5
    .venv/bin/python bench/accept_db.py --database-url ... --batch 5 --statements     # split by statement

A database named <name>_bench_<pid> is created next to the given one, migrated, seeded with 100 customers (a
verified domain, a mailbox and an app credential each) and dropped after. Each batch stores one 10 KB message
(bench/smtpload.py's text, or with --incompressible hex digits of random bytes) of one recipient from each of
`batch` customers in turn, in one transaction as the relay's write lane does. Printed for each batch size: the CPU
of the database backend serving the replay (its /proc/PID/schedstat, so other work on the machine does not count)
and the WAL written, a message. --statements sets log_statement_stats for the backend and sums the CPU it reports
for each statement (which the reporting itself inflates). Delivery is not asked for (no broker needed).
"""

import argparse
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this directory would come first on the path and this file would shadow the `relay` app.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

RECIPIENT = "someone@example.net"


def backend_ms(pid: int) -> float:
    """CPU time the process has run, in ms (nanoseconds in the kernel's scheduler statistics)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e6


class StatementCpu:
    """The backend's own account of each statement's CPU (log_statement_stats, sent to this client as LOG)."""

    _USAGE = re.compile(r"([0-9.]+) s user, ([0-9.]+) s system")

    def __init__(self, connection):
        import psycopg

        self.spent: dict[str, float] = defaultdict(float)
        self.current = "COMMIT and the rest"
        original = psycopg.Cursor.execute
        outer = self

        def execute(cursor, query, params=None, **kwargs):
            outer.current = " ".join(str(query).split())[:60]
            try:
                return original(cursor, query, params, **kwargs)
            finally:
                outer.current = "COMMIT and the rest"

        psycopg.Cursor.execute = execute  # every cursor of the replay, Django's and relay.sqlrows' alike
        connection.connection.add_notice_handler(self._notice)
        with connection.cursor() as cursor:
            cursor.execute("SET client_min_messages = log")
            cursor.execute("SET log_statement_stats = on")

    def _notice(self, diagnostic) -> None:
        found = self._USAGE.search(diagnostic.message_detail or "")
        if found:
            self.spent[self.current] += (float(found[1]) + float(found[2])) * 1000


def replay(args, batch: int, principals: list, statements: StatementCpu | None) -> None:
    from django.db import connection

    from bench import smtpload
    from relay.submission.accept import Submission, accept_messages, parse_headers

    bodies = []
    for principal, sender in principals:
        body = smtpload.message(sender, RECIPIENT, args.size)
        if args.incompressible:
            body = body.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" + os.urandom(args.size // 2).hex().encode()
        bodies.append((principal, sender, body, parse_headers(body)))

    def submissions(n: int) -> list:
        chosen = [bodies[(n * batch + i) % len(bodies)] for i in range(batch)]
        return [Submission(principal=principal, mail_from=sender, recipients=[RECIPIENT], content=body,
                           client_ip="127.0.0.1", helo="bench", tls_version="TLSv1.3", headers=headers)
                for principal, sender, body, headers in chosen]

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    for n in range(20):  # the backend's caches warm, as a relay's after its first messages
        accept_messages(submissions(n))
    batches = max(1, args.messages // batch)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        start_lsn = cursor.fetchone()[0]
    if statements:
        statements.spent.clear()
    started, wall = backend_ms(pid), time.perf_counter()
    for n in range(batches):
        accept_messages(submissions(n))
    spent, wall = backend_ms(pid) - started, time.perf_counter() - wall
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [start_lsn])
        wal = float(cursor.fetchone()[0])
    messages = batches * batch
    print(f"batches of {batch:>2}: database backend {spent * 1000 / messages:7.1f} us a message, "
          f"WAL {wal / messages / 1024:5.2f} KB a message ({messages} messages, {messages / wall:.0f} msgs/s)")
    if statements:
        for label, ms in sorted(statements.spent.items(), key=lambda item: -item[1]):
            print(f"    {ms * 1000 / messages:7.1f} us a message  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL server to use (a fresh database is made)")
    parser.add_argument("--batch", default="1,2,5", help="messages a transaction, comma-separated (default 1,2,5)")
    parser.add_argument("--messages", type=int, default=2000, help="messages stored for each batch size")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument("--incompressible", action="store_true", help="a body of hex digits of random bytes")
    parser.add_argument("--statements", action="store_true", help="the backend's CPU split by statement")
    args = parser.parse_args()

    import tempfile

    from bench.relay import create_database, seed

    db_url, drop_database = create_database(args.database_url, Path(tempfile.gettempdir()))
    os.environ.update({"DJANGO_SETTINGS_MODULE": "hostingmail.settings", "DATABASE_URL": db_url,
                       "LOG_LEVEL": "ERROR", "DEBUG": "false"})
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from accounts.models import SmtpCredential
        from relay.submission import accept
        from relay.submission.policy import Principal

        call_command("migrate", verbosity=0)
        seed(100, 100)
        accept.notifier.submit = lambda ids: None  # delivery is not measured
        principals = [(Principal(kind="credential", username=c.username, customer_id=c.domain.customer_id,
                                 customer_name=c.domain.customer.name, domain_id=c.domain_id,
                                 domain_name=c.domain.name, domain_can_send=True, credential_id=c.pk,
                                 mailbox_id=c.mailbox_id), c.mailbox.address)
                      for c in SmtpCredential.objects.select_related("domain__customer", "mailbox").order_by("pk")]
        from django.db import connection

        connection.ensure_connection()
        statements = StatementCpu(connection) if args.statements else None
        for batch in (int(b) for b in args.batch.split(",")):
            replay(args, batch, principals, statements)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database()


if __name__ == "__main__":
    main()
