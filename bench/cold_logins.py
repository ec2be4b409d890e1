"""A storm of cold mailbox logins beside sessions already logged in: do the warm ones keep sending?

    .venv/bin/python bench/cold_logins.py                          # SQLite in a temporary directory
    .venv/bin/python bench/cold_logins.py --cold 400 --warm 10 --database-url postgres://postgres@127.0.0.1:5432/hm

`manage.py runrelay --processes P` (default: one per core) at the production Argon2 cost (MAIL_HASH_* defaults),
`--warm` sessions logged in with app credentials sending 10 KB messages one after another, first alone for
`--calm` seconds (the baseline, same run), then while `--cold` clients, each a mailbox never seen before, log in
with its password at once (AUTH PLAIN, then QUIT; each connected and through STARTTLS beforehand, ten at a time, so
that the figures are of the AUTHs, not of a hundred TLS handshakes). A client answered 454 4.7.0 (the relay's
hash queue full, RELAY_AUTH_HASH_QUEUE) retries its AUTH after `--retry` seconds, as a mail client does.

Printed: the storm's AUTH p50/p99 (each attempt, and from the first attempt to 235), the 454s, cold logins/s, the
warm sessions' message p50/p99 during the storm against the calm baseline, and in both phases the cores' worth of
CPU the relay's processes used (hashing workers included) and each core's busy share (/proc/stat, everything).
"""

import argparse
import asyncio
import base64
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import cpu, smtpload  # noqa: E402
from bench.relay import Server, create_database, seed  # noqa: E402
from tests.peers import free_port  # noqa: E402

RECIPIENT = "someone@example.net"


def seed_mailboxes(count: int) -> list[tuple[str, str]]:
    """`count` mailboxes with passwords of their own, on one customer's domain: [(address, password)]."""
    from accounts.services.domains import domain_create
    from accounts.services.mailboxes import mailbox_create
    from accounts.services.tenants import customer_create

    customer = customer_create(actor=None, name="Cold storm", max_mailboxes=count + 1, max_storage_mb=count * 10)
    domain = domain_create(actor=None, customer=customer, name="cold.test", verified=True)
    found = []
    for i in range(count):
        password = secrets.token_urlsafe(16)
        mailbox = mailbox_create(actor=None, domain=domain, local_part=f"user{i}", password=password, quota_mb=10,
                                 smtp_enabled=True)
        found.append((mailbox.address, password))
    return found


def core_times() -> list[tuple[int, int]]:
    """(busy, total) jiffies of each core."""
    cores = []
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                values = [int(x) for x in fields]
                idle = values[3] + values[4]  # idle, iowait
                cores.append((sum(values) - idle, sum(values)))
    return cores


def busy_share(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    return [(b2 - b1) / max(1, t2 - t1) for (b1, t1), (b2, t2) in zip(before, after)]


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


async def warm_sender(port: int, login: tuple[str, str, str], stop: asyncio.Event, latencies: list[float],
                      errors: list[str], ready: asyncio.Event, arrived: list) -> None:
    username, password, sender = login
    client = smtpload.Client("127.0.0.1", port)
    try:
        await client.connect_tls()
        await client.auth_plain(username, password)
        arrived.append(1)
        await ready.wait()
        while not stop.is_set():
            body = smtpload.message(sender, RECIPIENT, 10_000)
            started = time.perf_counter()
            await client.send(sender, RECIPIENT, body)
            latencies.append(time.perf_counter() - started)
        await client.quit()
    except (smtpload.SmtpError, OSError) as error:
        errors.append(str(error))


async def connected(port: int, ready: asyncio.Semaphore, n: int) -> smtpload.Client:
    async with ready:
        # Each client from an address of its own, as after a restart: the relay lets one address have only
        # RELAY_AUTH_MAX_FAILURES AUTHs hashing at once (a storm from one address would queue behind those).
        client = smtpload.Client("127.0.0.1", port, local_address=f"127.0.{1 + n // 250}.{1 + n % 250}")
        await client.connect_tls()
        return client


async def cold_login(client: smtpload.Client, login: tuple[str, str], retry: float, result: dict) -> None:
    token = base64.b64encode(f"\0{login[0]}\0{login[1]}".encode()).decode()
    try:
        first = time.perf_counter()
        while True:
            started = time.perf_counter()
            client.writer.write(f"AUTH PLAIN {token}\r\n".encode())
            code, text = await client.reply()
            result["attempts"].append(time.perf_counter() - started)
            if code == 235:
                result["logins"].append(time.perf_counter() - first)
                break
            if code != 454:
                raise smtpload.SmtpError(f"AUTH -> {code} {text}")
            result["busy"] += 1
            await asyncio.sleep(retry)
        await client.quit()
    except (smtpload.SmtpError, OSError) as error:
        result["errors"].append(f"{type(error).__name__}: {error}")


async def phase(relay: Server, port: int, warm: list[tuple[str, str, str]], cold: list[tuple[str, str]], calm: float,
                retry: float) -> dict:
    """The warm sessions sending, for `calm` seconds without cold logins, or for as long as the storm lasts.

    The storm's clients connect and finish STARTTLS beforehand, a few at a time (a hundred TLS handshakes at once
    would measure the handshakes), then send their AUTH at once."""
    handshakes = asyncio.Semaphore(10)
    clients = await asyncio.gather(*(connected(port, handshakes, n) for n in range(len(cold))))
    stop, ready, arrived = asyncio.Event(), asyncio.Event(), []
    latencies, errors = [], []
    senders = [asyncio.ensure_future(warm_sender(port, login, stop, latencies, errors, ready, arrived))
               for login in warm]
    while len(arrived) + len(errors) < len(warm):
        await asyncio.sleep(0.01)
    result = {"attempts": [], "logins": [], "busy": 0, "errors": [], "warm_errors": errors}
    cores, relay_cpu = core_times(), cpu.seconds(cpu.tree(relay.proc.pid))
    ready.set()
    started = time.perf_counter()
    if cold:
        await asyncio.gather(*(cold_login(client, login, retry, result) for client, login in zip(clients, cold)))
    else:
        await asyncio.sleep(calm)
    seconds = time.perf_counter() - started
    result.update(seconds=seconds, cores=busy_share(cores, core_times()), warm=list(latencies),
                  relay_cores=(cpu.seconds(cpu.tree(relay.proc.pid)) - relay_cpu) / seconds,
                  rate=len(result["logins"]) / seconds)
    stop.set()
    await asyncio.gather(*senders)
    return result


def report(calm: dict, storm: dict, args, number: int) -> None:
    print(f"\nstorm {number}: {args.cold} cold mailbox logins at once (Argon2, each mailbox new), {args.warm} warm "
          f"sessions sending 10 KB messages; relay --processes {args.processes}; database "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"  storm: {len(storm['logins'])} logged in in {storm['seconds']:.1f} s = {storm['rate']:.1f} cold logins/s; "
          f"{storm['busy']} AUTHs answered 454 4.7.0 (retried after {args.retry} s)")
    print(f"  AUTH each attempt p50 / p99: {pct(storm['attempts'], 50):.0f} / {pct(storm['attempts'], 99):.0f} ms; "
          f"first attempt to 235 p50 / p99: {pct(storm['logins'], 50):.0f} / {pct(storm['logins'], 99):.0f} ms")
    for label, result in (("calm", calm), ("storm", storm)):
        rate = len(result["warm"]) / result["seconds"]
        print(f"  warm sessions, {label:<5}: {len(result['warm'])} messages, {rate:.0f}/s, p50 / p99 "
              f"{pct(result['warm'], 50):.0f} / {pct(result['warm'], 99):.0f} ms; the relay used "
              f"{result['relay_cores']:.2f} cores; each core busy (all processes) "
              + " ".join(f"{share:.0%}" for share in result["cores"]))
    print(f"  warm p99 during the storm / calm: {pct(storm['warm'], 99) / pct(calm['warm'], 99):.2f}x")
    for label, errors in (("warm sessions, calm", calm["warm_errors"]), ("warm sessions, storm", storm["warm_errors"]),
                          ("cold logins", storm["errors"])):
        if errors:
            print(f"  {label}: {len(errors)} errors, e.g. {sorted(set(errors))[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="PostgreSQL server to create the run's database on")
    parser.add_argument("--cold", type=int, default=200, help="cold mailbox logins in the storm")
    parser.add_argument("--warm", type=int, default=10, help="sessions logged in before, sending throughout")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--storms", type=int, default=2,
                        help="storms one after the other, each of new mailboxes (the first also starts the relay's "
                             "hashing worker processes)")
    parser.add_argument("--calm", type=float, default=5.0, help="seconds of the baseline without a storm")
    parser.add_argument("--retry", type=float, default=1.0, help="seconds a client waits after a 454")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hm-bench-cold-"))
    db_url, drop_database = create_database(args.database_url, workdir)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "VAR_DIR": str(workdir),
           "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING", "DEBUG": "false", "PYTHONPATH": str(ROOT),
           "RELAY_CONNECTION_LIMIT_EXEMPT": "127.0.0.0/8"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(env)
    for folder in ("broker/out", "broker/processed"):
        (workdir / folder).mkdir(parents=True)
    relay = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from django.conf import settings
        from django.db import connections

        from relay.smtpd.tls import make_self_signed

        cert, key = workdir / "bench.crt", workdir / "bench.key"
        make_self_signed(cert, key, hostname="localhost")
        print(f"seeding {args.cold * args.storms} mailboxes (Argon2id t={settings.MAIL_HASH_TIME_COST}, "
              f"m={settings.MAIL_HASH_MEMORY_KIB} KiB) and {args.warm} app credentials...", flush=True)
        cold = seed_mailboxes(args.cold * args.storms)
        warm = seed(args.warm, min(args.warm, 10))
        connections.close_all()
        port = free_port()
        argv = [sys.executable, "manage.py", "runrelay", "--submission", f"127.0.0.1:{port}", "--smtps", "off",
                "--cert", str(cert), "--key", str(key), "--processes", str(args.processes)]
        relay = Server("relay", argv, env, port, workdir / "relay.log", processes=args.processes)
        calm = asyncio.run(phase(relay, port, warm, [], args.calm, args.retry))
        for n in range(args.storms):
            chosen = cold[n * args.cold:(n + 1) * args.cold]
            storm = asyncio.run(phase(relay, port, warm, chosen, args.calm, args.retry))
            report(calm, storm, args, n + 1)
            if storm["errors"] or storm["warm_errors"]:
                print("  the relay's log ends with:\n" + (workdir / "relay.log").read_text(errors="replace")[-3000:])
    finally:
        if relay is not None:
            relay.stop()
        drop_database()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
