"""Logins without the slow hash: app credentials under their keyed hash, mailbox passwords seen before a restart.

    .venv/bin/python bench/login_cache.py                   # SQLite in a temporary directory
    .venv/bin/python bench/login_cache.py --database-url postgres://postgres@127.0.0.1:5432/hm

One `manage.py runrelay` process (production Argon2 cost from hostingmail/settings.py), the load generator of
bench/relay.py (bench/smtpload.py: connect, STARTTLS, AUTH PLAIN, QUIT; `--sessions` at once), every login used once:

- cold app credentials: as stored now (HMAC-SHA-256), against the same number stored in Argon2 as before (the
  baseline, measured in the same run; their first login converts them, so each is used once);
- mailbox passwords: cold (Argon2, which writes the verified-login entry), then the same logins again after the
  relay is restarted. The relay's own counters (/metrics) tell how many AUTHs took Argon2.

The ceiling, in the same run: bench/bare_smtpd.py (aiosmtpd with the same TLS and AUTH exchange, no database, no
hash) logging the same number of sessions in.
"""

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import smtpload  # noqa: E402
from bench.relay import Server, create_database, start_bare  # noqa: E402
from tests.peers import free_port  # noqa: E402

METHODS = ("argon2", "hmac", "cached")


def seed(count: int, customers: int) -> dict[str, list[tuple[str, str, str]]]:
    """`count` mailboxes with passwords of their own, `count` credentials, `count` credentials in Argon2."""
    from accounts import hashing
    from accounts.models import SmtpCredential
    from accounts.services.credentials import credential_create
    from accounts.services.domains import domain_create
    from accounts.services.mailboxes import mailbox_create
    from accounts.services.tenants import customer_create

    domains = []
    for n in range(customers):
        customer = customer_create(actor=None, name=f"Bench {n}")
        domains.append(domain_create(actor=None, customer=customer, name=f"bench{n}.test", verified=True))
    sets = {"mailbox": [], "credential": [], "credential (Argon2)": []}
    for i in range(count):
        domain = domains[i % customers]
        password = secrets.token_urlsafe(16)
        mailbox = mailbox_create(actor=None, domain=domain, local_part=f"user{i}", password=password,
                                 smtp_enabled=True)
        sets["mailbox"].append((mailbox.address, password, mailbox.address))
        for name in ("credential", "credential (Argon2)"):
            new = credential_create(actor=None, domain=domain, mailbox=mailbox)
            if name == "credential (Argon2)":
                SmtpCredential.objects.filter(pk=new.credential.pk).update(secret_hash=hashing.make_hash(new.secret))
            sets[name].append((new.credential.username, new.secret, mailbox.address))
    return sets


def checks(http: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = dict.fromkeys(METHODS, 0)
    for line in text.splitlines():
        for method in METHODS:
            if line.startswith(f'hostingmail_smtp_auth_checks_total{{method="{method}"}} '):
                found[method] = int(float(line.rsplit(" ", 1)[1]))
    return found


def start(env: dict, cert: Path, key: Path, label: str) -> tuple[Server, int]:
    port, http = free_port(), free_port()
    argv = [sys.executable, "manage.py", "runrelay", "--submission", f"127.0.0.1:{port}",
            "--smtps", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{http}", "--cert", str(cert),
            "--key", str(key), "--processes", "1"]
    return Server(label, argv, env, port, Path(env["VAR_DIR"]) / f"{label}.log"), http


def logins(server: Server, http: int | None, chosen: list[tuple[str, str, str]], sessions: int) -> dict:
    """Every login of `chosen` once, `sessions` at a time: logins/s and how the relay checked them."""
    before = checks(http) if http else dict.fromkeys(METHODS, 0)
    started = time.perf_counter()
    errors = []
    for k in range(0, len(chosen), sessions):
        chunk = chosen[k:k + sessions]
        result = asyncio.run(smtpload.run_load(host="127.0.0.1", port=server.port, logins=chunk,
                                               recipient="someone@example.net", sessions=len(chunk), messages=0,
                                               size=0))
        errors += result.errors
    seconds = time.perf_counter() - started
    after = checks(http) if http else before
    return {"rate": len(chosen) / seconds, "errors": errors,
            "checks": {m: after[m] - before[m] for m in METHODS}}


def line(label: str, result: dict, baseline: dict | None = None) -> str:
    ratio = f" ({result['rate'] / baseline['rate']:.1f}x)" if baseline else ""
    checked = ", ".join(f"{m} {n}" for m, n in result["checks"].items() if n) or "-"
    errors = f"; {len(result['errors'])} errors, e.g. {result['errors'][0]}" if result["errors"] else ""
    return f"  {label:<44} {result['rate']:8.1f} logins/s{ratio:<10} AUTHs checked by: {checked}{errors}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="PostgreSQL server to create the run's database on")
    parser.add_argument("--logins", type=int, default=200, help="logins of each kind, each used once per phase")
    parser.add_argument("--sessions", type=int, default=20, help="sessions at once")
    parser.add_argument("--customers", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hm-bench-logins-"))
    db_url, drop_database = create_database(args.database_url, workdir)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "VAR_DIR": str(workdir),
           "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING", "DEBUG": "false", "PYTHONPATH": str(ROOT),
           "RELAY_CONNECTION_LIMIT_EXEMPT": "127.0.0.1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(env)
    for folder in ("broker/out", "broker/processed"):
        (workdir / folder).mkdir(parents=True)
    servers = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from django.conf import settings
        from django.db import connections

        from relay.smtpd.tls import make_self_signed

        cert, key = workdir / "bench.crt", workdir / "bench.key"
        make_self_signed(cert, key, hostname="localhost")
        print(f"seeding {args.logins} mailboxes and {2 * args.logins} credentials (Argon2id t="
              f"{settings.MAIL_HASH_TIME_COST}, m={settings.MAIL_HASH_MEMORY_KIB} KiB)...", flush=True)
        sets = seed(args.logins, args.customers)
        connections.close_all()

        bare_login = ("bench", secrets.token_urlsafe(12), sets["mailbox"][0][2])
        bare_server = start_bare(env, cert, key, bare_login)
        servers.append(bare_server)
        bare = logins(bare_server, None, [bare_login] * args.logins, args.sessions)
        bare_server.stop()
        relay, http = start(env, cert, key, "relay")
        servers.append(relay)
        old = logins(relay, http, sets["credential (Argon2)"], args.sessions)
        new = logins(relay, http, sets["credential"], args.sessions)
        cold = logins(relay, http, sets["mailbox"], args.sessions)
        relay.stop()
        restarted, http = start(env, cert, key, "relay-restarted")
        servers.append(restarted)
        warm = logins(restarted, http, sets["mailbox"], args.sessions)
        restarted.stop()

        print(f"\n{args.logins} logins of each kind, {args.sessions} sessions at once (connect + STARTTLS + AUTH + "
              f"QUIT), one relay process; database {'PostgreSQL' if args.database_url else 'SQLite'}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(line("bare aiosmtpd (TLS + AUTH, nothing checked)", bare))
        print(line("cold credentials, stored in Argon2 (before)", old, bare))
        print(line("cold credentials, stored as HMAC-SHA-256", new, bare))
        print(line("cold mailbox passwords (Argon2)", cold, bare))
        print(line("the same mailboxes after a relay restart", warm, bare))
        print(f"  credentials as HMAC / in Argon2: {new['rate'] / old['rate']:.1f}x; mailboxes after the restart / "
              f"cold: {warm['rate'] / cold['rate']:.1f}x")
    finally:
        for server in servers:
            server.stop()
        drop_database()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
