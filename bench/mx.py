"""The MX's accept rate beside a bare aiosmtpd, and LMTP delivery into Dovecot beside Dovecot's own LMTP fed directly.

    .venv/bin/python bench/mx.py                                   # accept rate only (SQLite)
    .venv/bin/python bench/mx.py --database-url postgres://postgres@127.0.0.1:5432/hostingmail   # and LMTP
    .venv/bin/python bench/mx.py --rspamd                          # runmx without and with rspamd in the path
    .venv/bin/python bench/mx.py --default-processes               # and runmx as shipped: one process a core

Accept: `manage.py runmx` (SPF, DKIM and DMARC against a dnsmasq on loopback, every RCPT looked up, each message
committed before its 250) and bench/bare_smtpd.py --mx (aiosmtpd discarding everything), in the same run, with
the same load: 20 sessions at once, each EHLO + STARTTLS, then messages of 10 KB to 3 hosted recipients. The
comparison of record is one process with one (`runmx --processes 1`); --default-processes adds runmx as it ships (a
process a core, sharing the port) in every round, printed as a second comparison with the same bare server. Each
server first gets the same load off the clock (`--warmup` messages a session, 5 by default): what is measured is the
steady state an MX that runs for days is in (its connections open, its recipient and DNS caches filled); with
`--warmup 0` a freshly started process's first messages are on the clock too.
LMTP (PostgreSQL only: Dovecot reads the mailbox tables): the messages the MX accepted, delivered by real Celery
worker processes (2 x `-P threads --concurrency 16`, as the systemd unit runs them; the MX's own delivery tasks,
one LMTP transaction per message) into a private Dovecot from the shipped configuration; beside it the same number
of messages fed by 16 threads straight to Dovecot's LMTP socket.
"""

import argparse
import asyncio
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import cpu, smtpload  # noqa: E402
from bench.relay import Server, create_database  # noqa: E402
from tests.peers import DnsServer, free_port  # noqa: E402

SENDER = "news@sender.bench"
RECIPIENTS = ["info@mx0.bench", "info@mx1.bench", "info@mx2.bench"]
TARGET_ACCEPT, TARGET_LMTP = 0.6, 0.5
DEFAULT = "runmx default"  # runmx without --processes: one process a core


async def session(port: int, messages: int, size: int, result: smtpload.LoadResult) -> None:
    client = smtpload.Client("127.0.0.1", port)
    try:
        await client.connect_tls()
        for _ in range(messages):
            body = smtpload.message(SENDER, RECIPIENTS[0], size)
            started = time.perf_counter()
            await client.command(f"MAIL FROM:<{SENDER}> SIZE={len(body)}", 250)
            for recipient in RECIPIENTS:
                await client.command(f"RCPT TO:<{recipient}>", 250)
            await client.command("DATA", 354)
            client.writer.write(body + b".\r\n")
            code, text = await client.reply()
            if code != 250:
                raise smtpload.SmtpError(f"end of DATA -> {code} {text}")
            result.latencies.append(time.perf_counter() - started)
            result.messages += 1
        await client.quit()
    except (smtpload.SmtpError, OSError) as error:
        result.errors.append(str(error))


def load(port: int, sessions: int, messages: int, size: int) -> smtpload.LoadResult:
    result = smtpload.LoadResult(sessions=sessions)

    async def run():
        started = time.perf_counter()
        await asyncio.gather(*(session(port, messages, size, result) for _ in range(sessions)))
        result.seconds = time.perf_counter() - started

    asyncio.run(run())
    return result


def seed() -> None:
    from accounts.services.domains import domain_create
    from accounts.services.mailboxes import mailbox_create
    from accounts.services.tenants import customer_create

    for n, address in enumerate(RECIPIENTS):
        customer = customer_create(actor=None, name=f"MX bench {n}")
        domain = domain_create(actor=None, customer=customer, name=address.rpartition("@")[2], verified=True)
        mailbox_create(actor=None, domain=domain, local_part="info", password="bench password 1", quota_mb=10240)


def lmtp_rates(args, env: dict, workdir: Path) -> tuple[int, float, float]:
    """(messages, msgs/s delivered by the workers, msgs/s of Dovecot's LMTP fed directly)."""
    from celery import current_app

    from bench.delivery import delivered, published_tasks, run_workers, wait_ready
    from relay.models import QueuedMessage
    from tests.support.dovecot import running_dovecot

    # The MX's own delivery tasks (the messages it committed together), as it published them.
    tasks, ids = [], []
    for task in published_tasks(workdir / "broker" / "out"):
        if len(ids) >= args.lmtp_messages:
            break
        tasks.append(task)
        ids += task
    sample = bytes(QueuedMessage.objects.get(pk=ids[0]).content)
    with running_dovecot(log_userdb_lookups=False) as dovecot:
        # The run's broker is its own: the default queue, where a task handing its remaining messages on sends them.
        queue = "celery"
        workers = run_workers({**env, "LMTP_URL": str(dovecot.lmtp_socket)}, queue, args.workers, workdir, "lmtp",
                              args.concurrency)
        try:
            wait_ready(workdir, "lmtp", args.workers)
            pids = [pid for proc in workers for pid in cpu.tree(proc.pid)]
            cpu_before = cpu.seconds(pids)
            started = time.perf_counter()
            for task in tasks:
                current_app.send_task("relay.tasks.deliver_messages", args=[task], queue=queue)
            deadline, done = time.monotonic() + 300, 0
            while done < len(ids) and time.monotonic() < deadline:
                time.sleep(0.05)
                done = delivered(ids)
            ours = done / (time.perf_counter() - started)
            # On shared cores the rate swings with other work; the CPU each message cost the workers does not.
            print(f"  workers' CPU: {(cpu.seconds(pids) - cpu_before) * 1000 / max(done, 1):.1f} ms per message",
                  flush=True)
        finally:
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(30)
        if done < len(ids):
            print(f"  {len(ids) - done} messages not delivered in time")

        payload = sample.replace(b"\r\n.", b"\r\n..") + b".\r\n"

        def direct(_):
            # One transaction, as the workers send it: LHLO, MAIL, 3 RCPT, DATA, then a reply per recipient.
            client = smtplib.LMTP()
            client.connect(str(dovecot.lmtp_socket))
            client.ehlo()
            client.mail(SENDER)
            for recipient in RECIPIENTS:
                client.rcpt(recipient)
            client.docmd("DATA")
            client.send(payload)
            codes = [client.getreply()[0] for _ in RECIPIENTS]
            client.quit()
            assert codes == [250] * len(RECIPIENTS), codes

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(direct, range(len(ids))))
        theirs = len(ids) / (time.perf_counter() - started)
    return len(ids), ours, theirs


def rspamd_run(args, env: dict, cert: Path, key: Path, workdir: Path) -> None:
    """`--rspamd`: runmx with spam checking off and with a private rspamd (tests/support/rspamd.py) in the path, in
    alternating rounds with the same load; the cost per message in milliseconds (p50 latency) and as a rate ratio."""
    from tests.support.rspamd import running_rspamd

    best: dict[str, smtpload.LoadResult | None] = {"runmx": None, "runmx+rspamd": None}
    with running_rspamd() as rspamd:
        for n in range(args.rounds):
            for label in best:
                port = free_port()
                run_env = {**env, "RSPAMD_URL": rspamd.url if label == "runmx+rspamd" else ""}
                argv = [sys.executable, "manage.py", "runmx", "--listen", f"127.0.0.1:{port}", "--cert", str(cert),
                        "--key", str(key), "--processes", "1"]
                server = Server(label, argv, run_env, port, workdir / f"{label}-{n}.log", uses_database=True)
                try:
                    result = load(port, args.sessions, args.messages, args.size)
                finally:
                    server.stop()
                if result.errors:
                    print(f"  {label}: {len(result.errors)} errors, e.g. {result.errors[0]}")
                print(f"round {n + 1} {label:14s} {result.rate:7.1f} msgs/s  p50 {result.percentile(50) * 1000:6.1f} ms"
                      f"  p95 {result.percentile(95) * 1000:6.1f} ms", flush=True)
                if best[label] is None or result.rate > best[label].rate:
                    best[label] = result
    plain, checked = best["runmx"], best["runmx+rspamd"]
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\nMX accept with rspamd ({db}, {args.sessions} sessions x {args.messages} messages of "
          f"{args.size // 1024} KB, 3 recipients): without {plain.rate:.1f} msgs/s (p50 "
          f"{plain.percentile(50) * 1000:.1f} ms), with rspamd {checked.rate:.1f} msgs/s (p50 "
          f"{checked.percentile(50) * 1000:.1f} ms); cost per message {1000 / checked.rate - 1000 / plain.rate:.1f} ms "
          f"of throughput, {(checked.percentile(50) - plain.percentile(50)) * 1000:.1f} ms of p50 latency; "
          f"rate ratio {checked.rate / plain.rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (a fresh database is made there)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10, help="messages per session")
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two servers; keep each one's best")
    parser.add_argument("--lmtp-messages", type=int, default=300, help="0: the accept rate only")
    parser.add_argument("--default-processes", action="store_true",
                        help=f"also measure runmx with its shipped default, one process a core ('{DEFAULT}')")
    parser.add_argument("--rspamd", action="store_true",
                        help="instead: runmx without and with a private rspamd in the path, and its cost per message")
    parser.add_argument("--warmup", type=int, default=5,
                        help="messages a session sent to each server before its measured load (0: a fresh server "
                             "on the clock)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes delivering over LMTP")
    parser.add_argument("--concurrency", type=int, default=16, help="threads a worker (as the systemd unit runs them)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hm-bench-mx-"))
    db_url, drop_database = create_database(args.database_url, workdir)
    # The load generator says EHLO bench.test: its SPF (HELO identity) is published too.
    dns = DnsServer(txt=["sender.bench,v=spf1 ip4:127.0.0.1 -all", "_dmarc.sender.bench,v=DMARC1; p=none",
                         "bench.test,v=spf1 ip4:127.0.0.1 -all"],
                    raw=["--local-ttl=300"]).start()  # records with a TTL, as published ones have
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "VAR_DIR": str(workdir),
           "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING", "DEBUG": "false", "PYTHONPATH": str(ROOT),
           "DNS_NAMESERVERS": "127.0.0.1", "DNS_PORT": str(dns.port), "DNS_TIMEOUT": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(env)
    for folder in ("broker/out", "broker/processed"):
        (workdir / folder).mkdir(parents=True)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from django.db import connections

        from relay.smtpd.tls import make_self_signed

        cert, key = workdir / "bench.crt", workdir / "bench.key"
        make_self_signed(cert, key, hostname="localhost")
        seed()
        connections.close_all()
        if args.rspamd:
            rspamd_run(args, env, cert, key, workdir)
            return
        from relay.smtpd.supervisor import cores

        best = {"bare aiosmtpd": 0.0, "runmx": 0.0}
        if args.default_processes:
            best[DEFAULT] = 0.0
        for n in range(args.rounds):
            for label in best:
                port = free_port()
                processes = 1
                if label.startswith("runmx"):
                    argv = [sys.executable, "manage.py", "runmx", "--listen", f"127.0.0.1:{port}", "--cert", str(cert),
                            "--key", str(key)]
                    if label == DEFAULT:  # runmx's own default: one process a core, sharing the port
                        processes = cores()
                    else:
                        argv += ["--processes", "1"]
                else:
                    argv = [sys.executable, str(ROOT / "bench" / "bare_smtpd.py"), str(port), str(cert), str(key),
                            "--mx"]
                server = Server(label, argv, env, port, workdir / f"{label.replace(' ', '-')}-{n}.log",
                                uses_database=label.startswith("runmx"), processes=processes,
                                ready_line=b"MX listening" if label.startswith("runmx") else b"")
                pids = server.pids()
                # The server's CPU, and beside it what the load generator and PostgreSQL spent on the same messages:
                # on two cores their sum bounds the rate.
                groups = {"server": lambda: pids, "load": lambda: [os.getpid()]}
                if args.database_url:
                    groups["database"] = lambda: cpu.named("postgres")
                meter = cpu.Meter(groups)
                try:
                    if args.warmup:  # the same warm-up for each server, off the clock: the steady state is measured
                        load(port, args.sessions, args.warmup, args.size)
                    meter.start()
                    result = load(port, args.sessions, args.messages, args.size)
                    used = meter.stop()
                finally:
                    server.stop()
                if result.errors:
                    print(f"  {label}: {len(result.errors)} errors, e.g. {result.errors[0]}")
                per_message = {group: seconds * 1000 / max(result.messages, 1) for group, seconds in used.items()}
                others = ", ".join(f"{group} {ms:.1f}" for group, ms in per_message.items() if group != "server")
                print(f"round {n + 1} {label:14s} {result.rate:7.1f} msgs/s  p50 {result.percentile(50) * 1000:6.1f} ms"
                      f"  p95 {result.percentile(95) * 1000:6.1f} ms  CPU {per_message['server']:5.2f} ms/msg"
                      f" ({others})", flush=True)
                best[label] = max(best[label], result.rate)
        db = "PostgreSQL" if args.database_url else "SQLite"
        ratio = best["runmx"] / best["bare aiosmtpd"]
        print(f"\nMX accept ({db}, {args.sessions} sessions x {args.messages} messages of {args.size // 1024} KB, "
              f"STARTTLS, 3 recipients, after {args.warmup} a session off the clock): runmx {best['runmx']:.1f} msgs/s, bare aiosmtpd "
              f"{best['bare aiosmtpd']:.1f} msgs/s, ratio {ratio:.2f} (target >= {TARGET_ACCEPT}; one process each)")
        if args.default_processes:
            print(f"  runmx with its default processes (one a core: {cores()}) {best[DEFAULT]:.1f} msgs/s, ratio "
                  f"{best[DEFAULT] / best['bare aiosmtpd']:.2f} against the same bare aiosmtpd (one process)")
        if args.database_url and args.lmtp_messages:
            count, ours, theirs = lmtp_rates(args, env, workdir)
            print(f"LMTP delivery ({count} messages x 3 mailboxes): {args.workers} Celery workers x "
                  f"{args.concurrency} threads {ours:.1f} msgs/s, Dovecot's LMTP fed directly by {args.concurrency} "
                  f"threads {theirs:.1f} msgs/s, ratio {ours / theirs:.2f} (target >= {TARGET_LMTP})")
        elif args.lmtp_messages:
            print("LMTP delivery: needs --database-url (Dovecot reads the mailbox tables from PostgreSQL)")
    finally:
        from django.db import connections

        connections.close_all()
        dns.stop()
        drop_database()


if __name__ == "__main__":
    main()
