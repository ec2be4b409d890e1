"""Relay benchmark: against Postfix + Dovecot, or against a bare aiosmtpd server with the event-loop lag under AUTH load.

    .venv/bin/python bench/relay.py --database-url postgres://postgres@127.0.0.1:5432/hm   # against Postfix + Dovecot
    .venv/bin/python bench/relay.py --bare                 # against a bare aiosmtpd; SQLite in a temporary directory
    .venv/bin/python bench/relay.py --bare --database-url postgres://postgres@127.0.0.1:5432/hm --processes 2

By default (bench/workloads.py, bench/postfix.py): Debian's Postfix with Dovecot SASL on the relay's own PostgreSQL
tables, then the relay with one process per core, then with one process, each driven through the same workloads
(warm logins of one customer and of 100 customers, cold logins of app credentials and of mailbox passwords, a
restart), and the issue's targets printed with PASS/FAIL. Needs root (Postfix's master) and PostgreSQL.

With --bare: the same asyncio load generator (bench/smtpload.py) drives, in one run: (a) `manage.py runrelay` on its own
fresh database, and (b) bench/bare_smtpd.py, aiosmtpd with the same TLS and AUTH that discards mail (the
stack's ceiling). Each does 20 concurrent sessions of STARTTLS + AUTH PLAIN + 5 messages of 10 KB. The logins
of the load are warmed by one AUTH each first (steady state); the loop-lag figure then measures 50 cold AUTHs
(50 credentials never used before) at once, as the extra NOOP round trip of an idle session meanwhile and,
for one relay process, as the lateness of a timer inside its own event loop (bench/loop_lag.py), beside that of an
empty event loop in a process of its own: a storm in whose seconds even the empty loop waited past the target is
the machine's, printed apart and run again with new credentials.
With --database-url, a database named <name>_bench_<pid> is created next to the given one and dropped after.
"""

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this directory would come first on the path and this file would shadow the `relay` app.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import cpu, postfix, smtpload, workloads  # noqa: E402
from bench.postfix import missing  # noqa: E402
from relay.smtpd.supervisor import cores  # noqa: E402
from tests.peers import free_port, wait_for_port  # noqa: E402

RECIPIENT = "someone@example.net"
TARGET_RATIO, TARGET_LAG_MS = 0.6, 10.0
IDLE_SECONDS = 5.0


# --- the relay's database ----------------------------------------------------------------------------------


def create_database(url: str | None, workdir: Path) -> tuple[str, callable]:
    """A fresh database URL for this run and the function that removes it."""
    if not url:
        return f"sqlite:///{workdir / 'bench.sqlite3'}", lambda: None
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'hostingmail'}_bench_{os.getpid()}"
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def seed(count: int, customers: int) -> list[tuple[str, str, str]]:
    """`customers` customers, each with a verified domain and a mailbox, and `count` app credentials of those
    mailboxes in turn: [(username, secret, sender address)]."""
    from accounts.services.credentials import credential_create
    from accounts.services.domains import domain_create
    from accounts.services.mailboxes import mailbox_create
    from accounts.services.tenants import customer_create

    senders = []
    for n in range(customers):
        customer = customer_create(actor=None, name=f"Bench {n}")
        domain = domain_create(actor=None, customer=customer, name=f"bench{n}.test", verified=True)
        senders.append(mailbox_create(actor=None, domain=domain, local_part="sender",
                                      password=secrets.token_urlsafe(16), smtp_enabled=True))
    logins = []
    for i in range(count):
        mailbox = senders[i % customers]
        new = credential_create(actor=None, domain=mailbox.domain, mailbox=mailbox)
        logins.append((new.credential.username, new.secret, mailbox.address))
    return logins


# --- the servers -------------------------------------------------------------------------------------------


class Server:
    def __init__(self, label: str, argv: list[str], env: dict, port: int, log: Path, uses_database: bool = True,
                 processes: int = 1, ready_line: bytes = b""):
        self.label, self.port, self.log, self.uses_database = label, port, log, uses_database
        self.processes = processes
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            wait_for_port(port, proc=self.proc, timeout=60)
            if ready_line:
                self._wait_for_lines(ready_line, processes, timeout=60)
        except (RuntimeError, TimeoutError) as error:
            raise SystemExit(f"{label}: {error}\n{log.read_text(errors='replace')[-3000:]}") from None

    def _wait_for_lines(self, line: bytes, count: int, timeout: float) -> None:
        """Until every process says it is ready: the port answers as soon as the first one listens, and the CPU of
        the others still starting would count in the first load."""
        deadline = time.monotonic() + timeout
        while self.log.read_bytes().count(line) < count:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode} before its {count} processes were ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all {count} processes ready after {timeout}s")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return cpu.tree(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_relay(env: dict, cert: Path, key: Path, processes: int, *, lag: bool = True) -> Server:
    port = free_port()
    argv = [sys.executable, "manage.py", "runrelay", "--submission", f"127.0.0.1:{port}",
            "--smtps", f"127.0.0.1:{free_port()}", "--cert", str(cert), "--key", str(key), "--processes", str(processes)]
    if processes == 1 and lag:  # one process: its event loop's lag is measured from inside (bench/loop_lag.py)
        argv[1:1] = [str(ROOT / "bench" / "loop_lag.py"), str(lag_file(env))]
    return Server(relay_label(processes), argv, env, port, Path(env["VAR_DIR"]) / f"relay-{processes}.log",
                  processes=processes, ready_line=b"relay listening")


def relay_label(processes: int) -> str:
    return f"relay, {processes} process{'es' if processes > 1 else ''}"


def start_bare(env: dict, cert: Path, key: Path, login: tuple[str, str, str]) -> Server:
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "bare_smtpd.py"), str(port), str(cert), str(key), *login[:2]]
    return Server("bare aiosmtpd", argv, env, port, Path(env["VAR_DIR"]) / "bare.log", uses_database=False)


# --- measuring ---------------------------------------------------------------------------------------------


def lag_file(env: dict, name: str = "loop-lag.txt") -> Path:
    return Path(env["VAR_DIR"]) / name


CANARY = "canary-lag.txt"  # an empty event loop in a process of its own, beside the relay


def start_canary(env: dict) -> subprocess.Popen:
    """The same monitor in an event loop that runs nothing else: what it sees in the seconds of a storm is the
    machine's noise (other processes, the kernel, the host), measured in the same run as the relay's figure."""
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "loop_lag.py"), str(lag_file(env, CANARY))],
                            cwd=ROOT, env=env, start_new_session=True)


def inside_lag(env: dict, start: float, end: float, name: str = "loop-lag.txt") -> float | None:
    """Worst event-loop lag (ms) the relay's own monitor (or the canary's) saw between two wall-clock times."""
    path = lag_file(env, name)
    if not path.exists():
        return None
    ticks = [line.split() for line in path.read_text().splitlines()]
    lags = [float(lag) for t, lag in ticks if start <= float(t) <= end]
    return max(lags) if lags else None


async def measure(server: Server, *, load_logins, storm_logins, args, noise=None) -> dict:
    """The server's best rounds and its storms. With `noise(wall) -> ms` (the empty loop beside the server), a storm
    in whose seconds the machine kept even an empty event loop waiting past the target is set aside as disturbed
    and another storm, with credentials of its own, is run in its place (as many as `storm_logins` holds)."""
    # Warm-up: an AUTH per load login, so the measured load is the steady state of a running relay. Each process
    # remembers the passwords it verified; the kernel hands each connection to any of them (SO_REUSEPORT), so with
    # several processes every login logs in 12 times per process: each process is missed with odds below 1 in 4000.
    for _ in range(1 if server.processes == 1 else 12 * server.processes):
        await smtpload.run_load(host="127.0.0.1", port=server.port, logins=load_logins, recipient=RECIPIENT,
                                sessions=len(load_logins), messages=0, size=args.size)
    common = dict(host="127.0.0.1", port=server.port, logins=load_logins, recipient=RECIPIENT,
                  sessions=args.sessions, messages=args.messages, size=args.size)
    groups = {"server": lambda: cpu.tree(server.proc.pid), "load": lambda: [os.getpid()]}
    if args.database_url and server.uses_database:
        groups["database"] = lambda: cpu.named("postgres")
    meter = cpu.Meter(groups)
    load = accept = None
    for _ in range(args.rounds):  # the best round: the one the rest of the machine disturbed least
        meter.start()
        this = await smtpload.run_load(**common)
        this.cpu = meter.stop()
        load = this if load is None or this.rate > load.rate else load
        this = await smtpload.run_load(**common, messages_only=True)
        accept = this if accept is None or this.rate > accept.rate else accept
    # The machine's own noise: the same monitor over an idle relay for IDLE_SECONDS just before the storm.
    idle = (time.time(), None)
    await asyncio.sleep(IDLE_SECONDS)
    idle = (idle[0], time.time())
    storms, disturbed = [], []
    chunks = (storm_logins[k:k + args.storm] for k in range(0, len(storm_logins), args.storm))
    for chunk in chunks:  # each storm with credentials never used before
        if len(storms) == args.storms:
            break
        one = await smtpload.auth_storm_lag(host="127.0.0.1", port=server.port, logins=chunk)
        if noise is not None:
            await asyncio.sleep(0.5)  # the monitors write their ticks every 0.2 s
            one["noise_ms"] = noise(one["storm_wall"])
            if one["noise_ms"] is not None and one["noise_ms"] > TARGET_LAG_MS:
                disturbed.append(one)
                continue
        storms.append(one)
    storms = storms or disturbed
    if os.environ.get("BENCH_SLOW_CALLBACKS"):  # where each storm falls among the traced turns
        with open(os.environ["BENCH_SLOW_CALLBACKS"], "a") as out:
            out.writelines(f"{one['storm_wall'][0]:.3f} - storm of {server.label} until {one['storm_wall'][1]:.3f}\n"
                           for one in storms + disturbed)
    lag = max(storms, key=lambda one: one["lag_max_ms"])
    lag["disturbed_walls"] = [one["storm_wall"] for one in disturbed if one not in storms]
    lag["storm_walls"] = [one["storm_wall"] for one in storms]
    lag["connect_walls"] = [one["connect_wall"] for one in storms]
    lag["noop_each_ms"] = [one["lag_max_ms"] for one in storms]
    lag["idle_wall"] = idle
    return {"label": server.label, "load": load, "accept": accept, "lag": lag}


def each_lag(env: dict, walls: list[tuple[float, float]], name: str = "loop-lag.txt") -> list[float]:
    """inside_lag of each span; nan where the monitor recorded no tick."""
    lags = [inside_lag(env, *wall, name=name) for wall in walls]
    return [ms if ms is not None else float("nan") for ms in lags]


def as_load(args, coroutine):
    """Run the load generator in a thread of its own at `--load-nice` (Linux: a thread's own priority; the servers,
    started by the main thread, keep theirs). The generator is the busiest process of a run; at the same priority
    as the server it takes turns with it on the shared cores, and its time slices (2-4 ms) show up as the server's
    lag. Clients of a real relay run elsewhere. Both servers are measured with the same generator."""
    def target():
        if args.load_nice:
            os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + args.load_nice)
        return asyncio.run(coroutine)

    with load_group_lowered(args.load_nice), ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(target).result()


@contextlib.contextmanager
def load_group_lowered(nice: int):
    """Where the kernel shares the CPU between sessions first (Linux's autogroup, on by default), a thread's
    priority counts only against the other threads of its own session: the generator's session is lowered too,
    for the run (the servers each run in a session of their own, start_new_session, at the priority they were
    given). Restored after, where allowed (raising a priority back needs the right to)."""
    try:
        with open("/proc/self/autogroup") as group:
            before = int(group.read().split("nice")[1])
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(before + nice))
    except (OSError, IndexError, ValueError):  # no autogroup: the thread's own priority does it
        yield
        return
    try:
        yield
    finally:
        try:
            with open("/proc/self/autogroup", "w") as group:
                group.write(str(before))
        except OSError:
            print(f"note: this session's CPU priority stays lowered by {nice} (/proc/self/autogroup)")


def report(results: list[dict], bare: dict, args) -> None:
    print(f"\n{args.sessions} sessions x {args.messages} messages of {args.size // 1024} KB, STARTTLS + AUTH PLAIN, "
          f"{args.customers} sending customer(s); database {args.db_label}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end "
          f"({args.load_at_start:.1f} at the start): other work on the machine skews every figure; load generator "
          f"at nice +{args.load_nice}")
    print("whole sessions = connect + STARTTLS + AUTH + messages on the clock; "
          "messages only = clock starts once all sessions are authenticated"
          + (f"; best of {args.rounds} rounds" if args.rounds > 1 else ""))
    print(f"{'server':<22}{'phase':<16}{'msgs/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>7}{'errors':>8}")
    for r in results:
        for phase, name in (("load", "whole sessions"), ("accept", "messages only")):
            load = r[phase]
            ratio = load.rate / bare[phase].rate if bare[phase].rate else float("nan")
            print(f"{r['label']:<22}{name:<16}{load.rate:>8.1f}{load.percentile(50) * 1000:>9.1f}"
                  f"{load.percentile(99) * 1000:>9.1f}{ratio:>7.2f}{len(load.errors):>8}")
            for error in load.errors[:3]:
                print(f"    error: {error}")
    print("\nCPU per message in the best whole-sessions round (ms; 'load' is this generator, the same for each "
          "server):")
    for r in results:
        spent = r["load"].cpu
        print(f"{r['label']:<22}" + ", ".join(f"{label} {seconds * 1000 / max(1, r['load'].messages):.2f}"
                                             for label, seconds in spent.items()))
    print(f"\nNOOP round trip on an idle session while {args.storm} cold AUTHs run at once (extra over calm):")
    for r in results:
        lag = r["lag"]
        print(f"{r['label']:<22}calm {lag['baseline_ms']:.1f} ms, extra max {lag['lag_max_ms']:.1f} ms, "
              f"extra p50 {lag['lag_p50_ms']:.1f} ms over {lag['probes']} probes; storm {lag['storm_seconds']:.2f} s"
              + (f"; {len(lag['auth_failures'])} AUTH errors" if lag["auth_failures"] else ""))
        if lag.get("inside_max_ms") is not None:
            each = ", ".join(f"{ms:.1f}" for ms in lag["inside_each_ms"])
            print(f"{'':<22}worst lag seen by the relay's own loop monitor during the storm"
                  + (f"s ({each} ms each)" if len(lag["inside_each_ms"]) > 1 else "")
                  + f": {lag['inside_max_ms']:.1f} ms; the same relay idle for {IDLE_SECONDS:.0f} s just before "
                  f"(this machine's noise): {lag.get('idle_max_ms') or float('nan'):.1f} ms")
            beside = ", ".join(f"{ms:.1f}" for ms in lag["canary_each_ms"])
            print(f"{'':<22}an empty event loop in a process of its own beside it, in the same seconds (the machine's "
                  f"noise): {beside} ms; idle {lag.get('canary_idle_ms') or float('nan'):.1f} ms")
            if lag["disturbed_ms"]:
                pairs = ", ".join(f"{mine:.1f} ms (empty loop {theirs:.1f})" for mine, theirs in lag["disturbed_ms"])
                print(f"{'':<22}storms the machine disturbed (the empty loop beside it kept waiting over "
                      f"{TARGET_LAG_MS:.0f} ms in the same seconds), each run again with new credentials: relay {pairs}")
            bursts = ", ".join(f"{ms:.1f}" for ms in lag["connect_each_ms"])
            print(f"{'':<22}(before each storm, while its {args.storm} connections were made and negotiated TLS at "
                  f"once: {bursts} ms; not part of the storm's figure)")
    relays = [r for r in results if r is not bare]
    print()
    for r in relays:
        inside = r["lag"].get("inside_max_ms")
        print(f"{r['label']}: ratio relay/bare {r['load'].rate / bare['load'].rate:.2f} whole sessions, "
              f"{r['accept'].rate / bare['accept'].rate:.2f} messages only (target >= {TARGET_RATIO}); "
              f"loop lag max {inside if inside is not None else r['lag']['lag_max_ms']:.1f} ms "
              f"(target <= {TARGET_LAG_MS:.0f} ms"
              + (f"; {len(r['lag']['disturbed_ms'])} storm(s) the machine disturbed run again"
                 if r["lag"].get("disturbed_ms") else "") + ")"
              + (f"; the empty loop beside it: {max(r['lag']['canary_each_ms']):.1f} ms"
                 if r["lag"].get("canary_each_ms") else ""))
    if len(relays) == 2:
        print(f"scale factor {relays[1]['label']} / {relays[0]['label']}: "
              f"{relays[1]['load'].rate / relays[0]['load'].rate:.2f} whole sessions, "
              f"{relays[1]['accept'].rate / relays[0]['accept'].rate:.2f} messages only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (a fresh database is made there)")
    parser.add_argument("--bare", action="store_true",
                        help="the comparison with a bare aiosmtpd and the loop lag of AUTH storms instead of Postfix")
    parser.add_argument("--processes", type=int, default=None,
                        help=f"relay processes (default: one per core, {cores()} here); above 1, one is run too")
    parser.add_argument("--sessions", type=int, default=20, help="clients at once")
    parser.add_argument("--messages", type=int, default=5, help="messages per session")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument("--rounds", type=int, default=None,
                        help="repeat the warm loads, keep each server's best round (default 2; --bare: 1)")
    parser.add_argument("--load-nice", type=int, default=10,
                        help="CPU priority of the load generator below the servers' (0: the same)")
    parser.add_argument("--cold", type=int, default=200, help="app credentials of the cold load")
    parser.add_argument("--cold-mailboxes", type=int, default=100, help="mailboxes of the cold load")
    parser.add_argument("--restart-logins", type=int, default=2000,
                        help="credentials logged in before a restart of the relay and after it (0: no restart)")
    parser.add_argument("--restart-seconds", type=float, default=60.0,
                        help="the logins after the restart stop after this long")
    parser.add_argument("--storm", type=int, default=50, help="--bare: cold AUTHs at once for the loop-lag figure")
    parser.add_argument("--storms", type=int, default=1,
                        help="--bare: storms one after another; the worst is the figure")
    parser.add_argument("--customers", type=int, default=None,
                        help="customers of the 'warm, 100 customers' load (default 100); --bare: spread the sessions "
                             "over this many (default 1: all share one customer's quota rows)")
    parser.add_argument("--only", default=",".join(workloads.CHOICES),
                        help="comma-separated workloads to run, of: " + ", ".join(workloads.CHOICES)
                             + " ('scale' runs 'warm100' again with one relay process; default: all)")
    args = parser.parse_args()
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    if args.only - set(workloads.CHOICES):
        parser.error(f"--only: unknown {', '.join(sorted(args.only - set(workloads.CHOICES)))}")
    if "scale" in args.only:
        args.only.add("warm100")
    if "restart" not in args.only:
        args.restart_logins = 0
    if "cold_credentials" not in args.only:
        args.cold = 0
    if not args.only & {"cold_mailboxes", "restart"}:  # the restart's slow hashes are counted in cold ones'
        args.cold_mailboxes = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))  # the servers are stopped on the way out
    if args.rounds is None:
        args.rounds = 1 if args.bare else 2
    if args.customers is None:
        args.customers = 1 if args.bare else 100
    if args.processes is None:
        args.processes = 1 if args.bare else cores()
    if not args.bare:
        if not args.database_url:
            raise SystemExit("Postfix + Dovecot read the relay's tables in PostgreSQL: give --database-url "
                             "(or --bare for the comparison with a bare aiosmtpd, on SQLite too)")
        if missing():
            raise SystemExit(f"the Postfix + Dovecot baseline needs: {', '.join(missing())} (.ci/peers installs them)")
    args.db_label = "PostgreSQL" if args.database_url else "SQLite"
    args.load_at_start = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="hm-bench-"))
    db_url, drop_database = create_database(args.database_url, workdir)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "VAR_DIR": str(workdir),
           "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING", "DEBUG": "false", "PYTHONPATH": str(ROOT),
           # The load comes from one address, with more sessions at once than a client may hold (50), and the
           # lag probe is a session of NOOPs (past the junk command limit).
           "RELAY_CONNECTION_LIMIT_EXEMPT": "127.0.0.1", "RELAY_MAX_JUNK_COMMANDS": "0"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(env)
    for folder in ("broker/out", "broker/processed"):  # the embedded Celery broker's folders, as `make run` has
        (workdir / folder).mkdir(parents=True)
    servers, helpers = [], []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from relay.smtpd.tls import make_self_signed

        cert, key = workdir / "bench.crt", workdir / "bench.key"
        make_self_signed(cert, key, hostname="localhost")
        if args.bare:
            versus_bare(args, env, cert, key, servers, helpers)
        else:
            versus_postfix(args, env, db_url, cert, key, servers)
    finally:
        for server in servers:
            server.stop()
        for helper in helpers:
            helper.kill()
            helper.wait()
        drop_database()
        if os.environ.get("BENCH_KEEP"):  # the servers' logs, e.g. with PYTHONASYNCIODEBUG=1 set
            print("kept", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def versus_postfix(args, env: dict, db_url: str, cert: Path, key: Path, servers: list) -> None:
    """bench/workloads.py's workloads against Postfix + Dovecot, the relay with --processes N and, for the scale
    factor, with one process."""
    from django.db import connection, connections

    print(f"seeding {args.customers} customers and their credentials (real password hashing)...", flush=True)
    seeded = workloads.seed(customers=args.customers, one_customer=args.sessions, cold=args.cold,
                            cold_mailboxes=args.cold_mailboxes, restart=args.restart_logins)
    postfix.store_baseline_hashes(connection, seeded.one_customer + seeded.customers + seeded.cold_credentials)
    connections.close_all()
    work = [w for w in workloads.workloads(seeded, args) if w.key in args.only]
    labels = {w.key: w.name for w in work}
    baseline = postfix.PostfixDovecot(database_url=db_url, cert=cert, key=key, port=free_port())
    servers.append(baseline)
    args.postfix_label, args.relay_label = baseline.label, relay_label(args.processes)
    args.single_label = relay_label(1)
    results = workloads.run_all([(baseline, None)], work, args, as_load)
    baseline.stop()
    relay = start_relay(env, cert, key, args.processes, lag=False)
    servers.append(relay)
    results = merge(results, workloads.run_all([(relay, None)], work, args, as_load))
    restart = None
    if args.restart_logins:
        print(f"  {time.strftime('%H:%M:%S')} {relay.label}: restart with {args.restart_logins} logins...", flush=True)
        relay, restart = as_load(args, workloads.restart_logins(
            lambda: start_relay(env, cert, key, args.processes, lag=False), relay, seeded.restart, args))
        servers.append(relay)
    relay.stop()
    if args.processes > 1 and "scale" in args.only:
        single = start_relay(env, cert, key, 1, lag=False)
        servers.append(single)
        results = merge(results, workloads.run_all([(single, {"warm100"})], work, args, as_load))
        single.stop()
    workloads.report(results, restart, args, labels)


def merge(results: dict, more: dict) -> dict:
    return {key: {**results.get(key, {}), **more.get(key, {})} for key in results | more}


def versus_bare(args, env: dict, cert: Path, key: Path, servers: list, helpers: list) -> None:
    """The relay against a bare aiosmtpd (the stack's ceiling), and the loop lag of cold AUTH storms."""
    relay_counts = [1, args.processes] if args.processes > 1 else [1]
    # The single process's storms have as many again in reserve, for storms the machine disturbs.
    count = args.sessions + args.storm * args.storms * (len(relay_counts) + 1)
    print(f"seeding {count} credentials (real password hashing)...", flush=True)
    logins = seed(count, args.customers)
    load_logins, storm_sets = logins[:args.sessions], logins[args.sessions:]
    from django.db import connections

    connections.close_all()

    bare_login = ("bench", secrets.token_urlsafe(12), logins[0][2])
    bare_server = start_bare(env, cert, key, bare_login)
    servers.append(bare_server)
    bare = as_load(args, measure(bare_server, load_logins=[bare_login],
                                 storm_logins=[bare_login] * args.storm * args.storms, args=args))
    bare_server.stop()
    results = [bare]
    for i, processes in enumerate(relay_counts):
        relay = start_relay(env, cert, key, processes)
        servers.append(relay)
        if processes == 1:
            helpers.append(start_canary(env))
        per_relay = args.storm * args.storms
        if processes == 1:  # the empty loop beside it tells the storms the machine disturbed
            storm, storm_sets = storm_sets[:2 * per_relay], storm_sets[2 * per_relay:]
            noise = lambda wall: inside_lag(env, *wall, name=CANARY)  # noqa: E731
        else:
            storm, storm_sets, noise = storm_sets[:per_relay], storm_sets[per_relay:], None
        result = as_load(args, measure(relay, load_logins=load_logins, storm_logins=storm, args=args,
                                       noise=noise))
        if processes == 1:
            lag = result["lag"]
            lag["inside_each_ms"] = each_lag(env, lag["storm_walls"])
            lag["inside_max_ms"] = max(lag["inside_each_ms"])
            lag["idle_max_ms"] = inside_lag(env, *lag["idle_wall"])
            lag["connect_each_ms"] = each_lag(env, lag["connect_walls"])
            lag["canary_each_ms"] = each_lag(env, lag["storm_walls"], name=CANARY)
            lag["canary_idle_ms"] = inside_lag(env, *lag["idle_wall"], name=CANARY)
            lag["disturbed_ms"] = list(zip(each_lag(env, lag["disturbed_walls"]),
                                           each_lag(env, lag["disturbed_walls"], name=CANARY)))
        results.append(result)
        relay.stop()
    report(results, bare, args)


if __name__ == "__main__":
    main()
