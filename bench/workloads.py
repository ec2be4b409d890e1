"""bench/relay.py's comparison with Postfix + Dovecot (bench/postfix.py): the same load generator, the same database,
one workload after another against each server, and the issue's targets printed with their ratios.

Workloads (each session: connect, STARTTLS, AUTH PLAIN, messages of `--size`, QUIT; `--sessions` clients at once):
- warm, 1 customer: 20 app credentials of one customer, each logged in before the clock starts; 5 messages a session.
- warm, 100 customers: one credential of each of 100 customers (each its own quota rows), logged in before; each
  client runs 5 sessions one after another, so every login is used once per round; 5 messages a session.
- cold app credentials: 200 credentials never used before, one session each, one message (logins/s).
- cold mailbox passwords: 100 mailboxes (their own address and password, Argon2) never used before, one session
  each, one message (`--cold-mailboxes`; app credentials: `--cold`). Before either, one session for each client
  with the warm loads' logins settles the server (`settle`): its processes have started and served once.
- restart: `--restart-logins` credentials logged in once, the relay restarted, then logged in again: what the
  logins after the restart cost in slow hashes (the CPU of the hashing processes, against one cold hash's).
"""

import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from unittest import mock

from bench import cpu, smtpload

RECIPIENT = "someone@example.net"
TARGETS = {  # the targets: (what, comparison, target)
    "warm100_rate": "warm, 100 customers: relay msgs/s / Postfix's",
    "warm100_p99": "warm, 100 customers: relay p99 / Postfix's",
    "cold_credentials": "cold app credentials: relay logins/s / Postfix + Dovecot {BLF-CRYPT}'s",
    "cold_mailboxes": "cold mailbox passwords: relay logins/s / Postfix + Dovecot's (the same Argon2 hashes)",
    "restart": "restart: slow hashes in the first logins after it",
    "scale": "warm, 100 customers: relay --processes 2 / --processes 1, msgs/s",
}


# What bench/relay.py --only chooses from: the workloads below, the restart, and the scale factor.
CHOICES = ("warm1", "warm100", "cold_credentials", "cold_mailboxes", "restart", "scale")


@dataclass
class Workload:
    key: str
    name: str
    logins: list[tuple[str, str, str]]
    messages: int
    sessions_each: int = 1
    warm: bool = True
    rounds: int = 1
    settle: list = field(default_factory=list)  # a cold load's: logins of other loads, used before the clock starts


@dataclass
class Seeded:
    one_customer: list = field(default_factory=list)
    customers: list = field(default_factory=list)
    cold_credentials: list = field(default_factory=list)
    mailboxes: list = field(default_factory=list)
    restart: list = field(default_factory=list)


def _in_threads(func, items: list, threads: int) -> list:
    """func(item) for each item on `threads` threads (Argon2 releases the interpreter lock), each closing its
    database connection after."""
    from django.db import connections

    def run(chunk):
        try:
            return [func(item) for item in chunk]
        finally:
            connections.close_all()

    chunks = [items[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = list(pool.map(run, chunks))
    # Back in the original order.
    ordered = [None] * len(items)
    for i, results in enumerate(done):
        ordered[i::threads] = results
    return ordered


def _copies(template, secret: str, mailboxes: list, suffix: str) -> list[tuple[str, str, str]]:
    """Credentials of these mailboxes that share `template`'s secret and stored hash, each under its own username
    (bulk-inserted): as many logins as the warm loads need without as many slow hashes to seed them. Only for warm
    logins: a cache of verified logins keyed by the stored hash knows them all once it knows one."""
    from accounts.models import SmtpCredential

    fields = {f.attname: getattr(template, f.attname) for f in SmtpCredential._meta.concrete_fields if not f.primary_key}
    rows = [SmtpCredential(**{**fields, "username": f"{template.username}-{suffix}{i}", "mailbox_id": mailbox.pk,
                              "domain_id": mailbox.domain_id, "customer_id": mailbox.domain.customer_id})
            for i, mailbox in enumerate(mailboxes)]
    SmtpCredential.objects.bulk_create(rows, batch_size=500)
    return [(row.username, secret, mailbox.address) for row, mailbox in zip(rows, mailboxes)]


def seed(*, customers: int, one_customer: int, cold: int, cold_mailboxes: int, restart: int) -> Seeded:
    """Customers with a verified domain and a mailbox with SMTP access, and app credentials of those mailboxes; the
    cold and restart loads' credentials and mailboxes through the real services (real hashing, each its own
    secret), the warm loads' as copies of one of them (their hashes would only be verified once anyway)."""
    from accounts.models import Mailbox
    from accounts.services.credentials import credential_create
    from accounts.services.domains import dkim_keypair, domain_create
    from accounts.services.mailboxes import mailbox_create
    from accounts.services.tenants import customer_create

    threads = max(1, len(os.sched_getaffinity(0)))
    # One DKIM key pair for every domain, as manage.py seed_scale does: a 2048-bit RSA key a domain took most of
    # the seeding's time, and signing is the workers' business, not the relay's.
    with mock.patch("accounts.services.domains.dkim_keypair", return_value=dkim_keypair()):
        domains = [domain_create(actor=None, customer=customer_create(actor=None, name=f"Bench {n}"),
                                 name=f"bench{n}.test", verified=True) for n in range(customers)]
    first = mailbox_create(actor=None, domain=domains[0], local_part="sender", password=secrets.token_urlsafe(16),
                           smtp_enabled=True)
    fields = {f.attname: getattr(first, f.attname) for f in Mailbox._meta.concrete_fields if not f.primary_key}
    senders = [first] + Mailbox.objects.bulk_create([Mailbox(**{**fields, "domain_id": domain.pk}) for domain in domains[1:]])
    for mailbox, domain in zip(senders, domains):
        mailbox.domain = domain

    def cold_mailbox(n):
        password = secrets.token_urlsafe(16)
        mailbox = mailbox_create(actor=None, domain=domains[n % customers], local_part=f"cold{n}", password=password,
                                 smtp_enabled=True)
        return mailbox.address, password, mailbox.address

    def credential(mailbox):
        new = credential_create(actor=None, domain=mailbox.domain, mailbox=mailbox)
        return new.credential.username, new.secret, mailbox.address

    template = credential_create(actor=None, domain=first.domain, mailbox=first)
    return Seeded(
        one_customer=_copies(template.credential, template.secret, [first] * one_customer, "one"),
        customers=_copies(template.credential, template.secret, senders, "each"),
        cold_credentials=_in_threads(credential, [senders[i % customers] for i in range(cold)], threads),
        mailboxes=_in_threads(cold_mailbox, list(range(cold_mailboxes)), threads),
        restart=_in_threads(credential, [senders[i % customers] for i in range(restart)], threads),
    )


def workloads(seeded: Seeded, args) -> list[Workload]:
    clients = args.sessions
    return [
        Workload("warm1", "warm, 1 customer", seeded.one_customer, args.messages, rounds=args.rounds),
        Workload("warm100", f"warm, {len(seeded.customers)} customers", seeded.customers, args.messages,
                 sessions_each=max(1, len(seeded.customers) // clients), rounds=args.rounds),
        Workload("cold_credentials", "cold app credentials", seeded.cold_credentials, 1,
                 sessions_each=max(1, len(seeded.cold_credentials) // clients), warm=False,
                 settle=seeded.customers[:clients]),
        Workload("cold_mailboxes", "cold mailbox passwords", seeded.mailboxes, 1,
                 sessions_each=max(1, len(seeded.mailboxes) // clients), warm=False,
                 settle=seeded.customers[:clients]),
    ]


def hash_workers(pids: list[int]) -> list[int]:
    """The relay's password-hashing processes among `pids` (multiprocessing's spawned workers)."""
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    found.append(pid)
        except OSError:
            continue
    return found


async def warm_up(server, logins: list, args) -> None:
    """One AUTH per login; with several relay processes, each remembering what it verified and the kernel handing
    each connection to any of them, 4 per process: a login then misses a given process with odds of 1 in 256."""
    rounds = 1 if server.processes <= 1 else 4 * server.processes
    for _ in range(rounds):
        await smtpload.run_load(host="127.0.0.1", port=server.port, logins=logins, recipient=RECIPIENT,
                                sessions=min(len(logins), 100), messages=0, size=args.size,
                                sessions_each=-(-len(logins) // 100))


def meter(server, args) -> cpu.Meter:
    """CPU of the server (its hashing processes also apart), PostgreSQL and the load generator."""
    return cpu.Meter({"server": server.pids, "hashing": lambda: hash_workers(server.pids()),
                      "database": lambda: cpu.named("postgres"), "load": lambda: [os.getpid()]})


async def settle(server, logins: list, args) -> None:
    """One session with a message for each client, with logins that are not the cold load's: every process of the
    server has started and served (Postfix's smtpd processes forked, Dovecot's auth connected; the relay's database
    connections and its broker connection opened) before the clock starts, as on a server that has been up for a
    while."""
    result = await smtpload.run_load(host="127.0.0.1", port=server.port, logins=logins, recipient=RECIPIENT,
                                     sessions=len(logins), messages=1, size=args.size, sessions_each=1)
    for error in result.errors[:3]:
        print(f"    settling {server.label}: {error}", flush=True)


async def run(server, workload: Workload, args) -> smtpload.LoadResult:
    if workload.warm:
        await warm_up(server, workload.logins, args)
    elif workload.settle:
        await settle(server, workload.settle, args)
    best = None
    for _ in range(workload.rounds):
        measuring = meter(server, args)
        measuring.start()
        result = await smtpload.run_load(host="127.0.0.1", port=server.port, logins=workload.logins,
                                         recipient=RECIPIENT, sessions=args.sessions, messages=workload.messages,
                                         size=args.size, sessions_each=workload.sessions_each)
        result.cpu = measuring.stop()
        best = result if best is None or result.rate > best.rate else best
    return best


async def restart_logins(start_server, server, logins: list, args) -> tuple[object, dict]:
    """Log every login in once, restart the relay, log them in again (stopping after `--restart-seconds`)."""
    await warm_up(server, logins, args)  # "warm before it": each verified once (per process)
    server.stop()
    server = start_server()
    measuring = meter(server, args)
    measuring.start()
    result = await smtpload.run_load(host="127.0.0.1", port=server.port, logins=logins, recipient=RECIPIENT,
                                     sessions=args.sessions, messages=0, size=args.size,
                                     sessions_each=-(-len(logins) // args.sessions),
                                     deadline=args.restart_seconds)
    result.cpu = measuring.stop()
    return server, {"result": result, "asked": len(logins)}


def _row(workload: str, label: str, r: smtpload.LoadResult) -> str:
    spent = ", ".join(f"{name} {seconds * 1000 / max(1, r.messages or r.logins):.2f}" for name, seconds in r.cpu.items())
    return (f"{workload:<24}{label:<26}{r.rate:>8.1f}{r.login_rate:>9.1f}{r.percentile(50) * 1000:>8.1f}"
            f"{r.percentile(99) * 1000:>8.1f}{r.percentile(50, of='auth_latencies') * 1000:>9.1f}"
            f"{r.percentile(99, of='auth_latencies') * 1000:>9.1f}{len(r.errors):>7}   {spent}")


def verdict(ratio: float, target: float, *, at_most: bool = False) -> str:
    ok = ratio <= target if at_most else ratio >= target
    return f"{ratio:.2f}x (target {'<=' if at_most else '>='} {target}) {'PASS' if ok else 'FAIL'}"


def report(results: dict, restart: dict | None, args, labels: dict) -> None:
    """results[workload key][server label] = LoadResult."""
    print(f"\n{args.sessions} clients at once, STARTTLS + AUTH PLAIN, messages of {args.size // 1024} KB; PostgreSQL; "
          f"{len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f} at the end "
          f"({args.load_at_start:.1f} at the start); load generator at nice +{args.load_nice}; warm workloads: best of "
          f"{args.rounds} round(s)")
    print(f"{'workload':<24}{'server':<26}{'msgs/s':>8}{'logins/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'AUTH p50':>9}"
          f"{'AUTH p99':>9}{'errors':>7}   CPU ms a message (a login when no message)")
    for key, by_server in results.items():
        for label, result in by_server.items():
            print(_row(labels[key], label, result))
            for error in result.errors[:3]:
                print(f"    error: {error}")
    postfix, relay, single = args.postfix_label, args.relay_label, args.single_label
    print("\nTargets (issue 20; only those of the workloads run):")
    warm = results.get("warm100", {})
    if relay in warm and postfix in warm:
        print(f"- {TARGETS['warm100_rate']}: {verdict(warm[relay].rate / warm[postfix].rate, 1.0)}")
        print(f"- {TARGETS['warm100_p99']}: "
              f"{verdict(warm[relay].percentile(99) / warm[postfix].percentile(99), 1.5, at_most=True)}")
    for key in ("cold_credentials", "cold_mailboxes"):
        cold = results.get(key, {})
        if relay in cold and postfix in cold:
            print(f"- {TARGETS[key]}: {verdict(cold[relay].login_rate / cold[postfix].login_rate, 1.0)}")
    cold = results.get("cold_mailboxes", {}).get(relay)
    per_hash = cold.cpu.get("hashing", 0.0) / max(1, cold.logins) if cold is not None else 0.0
    if restart is not None:
        after = restart["result"]
        spent = after.cpu.get("hashing", 0.0)
        # Without the cold mailbox load there is no hash to measure against: then any CPU at all counts as a hash.
        hashes = spent / per_hash if per_hash else (0.0 if spent == 0 else float("inf"))
        print(f"- {TARGETS['restart']}: {after.logins} of {restart['asked']} logins in {after.seconds:.1f} s "
              f"({after.login_rate:.1f} logins/s, AUTH p50 {after.percentile(50, of='auth_latencies') * 1000:.1f} ms, "
              f"p99 {after.percentile(99, of='auth_latencies') * 1000:.1f} ms); the hashing processes spent "
              f"{spent * 1000:.0f} ms of CPU, {hashes:.1f} cold mailbox hashes' worth ({per_hash * 1000:.0f} ms each) "
              f"{'PASS' if after.logins == restart['asked'] and hashes < 1 else 'FAIL'}")
    if single in warm and relay in warm:
        print(f"- {TARGETS['scale']}: {verdict(warm[relay].rate / warm[single].rate, 1.3)}")


def run_all(servers: list, work: list[Workload], args, as_load) -> dict:
    """Every workload against each (started) server in turn: {workload key: {label: LoadResult}}."""
    results = {w.key: {} for w in work}
    for server, only in servers:
        for workload in work:
            if only is None or workload.key in only:
                print(f"  {time.strftime('%H:%M:%S')} {server.label}: {workload.name}...", flush=True)
                results[workload.key][server.label] = as_load(args, run(server, workload, args))
    return results

