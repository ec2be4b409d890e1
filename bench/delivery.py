"""Delivery benchmark: N queued 10 KB messages delivered by two Celery worker processes to a local smtp-sink MX,
with and without connection reuse, beside the relay's accept rate on the same machine and database.

    .venv/bin/python bench/delivery.py                      # SQLite in a temporary directory, 400 messages
    .venv/bin/python bench/delivery.py --database-url postgres://postgres@127.0.0.1:5432/hm -n 1000

MX answers come from dnsmasq on loopback (sink.test MX -> 127.0.0.1); the broker is Redis when it answers at
--redis-url (a queue of this run's own), else the embedded filesystem broker. The clock runs from the first
task sent to the last message marked delivered in the database. The accept rate is bench/relay.py's load
(20 sessions, STARTTLS + AUTH, messages only); delivery keeps up when its msgs/s is at least that.
"""

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import smtpload  # noqa: E402
from bench.relay import RECIPIENT, create_database, seed, start_relay  # noqa: E402
from tests.peers import DnsServer, free_port, wait_for_port  # noqa: E402

DOMAIN = "sink.test"


def queue_messages(count: int, size: int, sender: str) -> list[int]:
    from django.db import transaction

    from accounts.models import Mailbox
    from relay.models import QueuedMessage, Recipient

    mailbox = Mailbox.objects.select_related("domain__customer").get(local_part="sender")
    body = ("x" * 76 + "\r\n") * (size // 78)
    ids = []
    with transaction.atomic():
        for n in range(count):
            content = (f"From: {sender}\r\nTo: rcpt{n}@{DOMAIN}\r\nSubject: bench {n}\r\n"
                       f"Message-ID: <bench{n}.{uuid.uuid4().hex}@bench.test>\r\n\r\n{body}").encode()
            message = QueuedMessage.objects.create(
                customer=mailbox.domain.customer, domain=mailbox.domain, mailbox=mailbox, mail_from=sender,
                header_from=sender, subject=f"bench {n}", size=len(content), content=content)
            ids.append(message.pk)
        Recipient.objects.bulk_create([Recipient(message_id=pk, address=f"rcpt{i}@{DOMAIN}")
                                       for i, pk in enumerate(ids)])
    return ids


def delivered(ids: list[int]) -> int:
    from relay.models import QueuedMessage

    return QueuedMessage.objects.filter(pk__in=ids, state=QueuedMessage.State.DELIVERED).count()


def run_workers(env: dict, queue: str, count: int, workdir: Path, label: str, concurrency: int = 1
                ) -> list[subprocess.Popen]:
    # Delivery waits on the network and the database: a worker process runs several deliveries in threads.
    pool = ["-P", "solo"] if concurrency <= 1 else ["-P", "threads", "--concurrency", str(concurrency)]
    procs = []
    for i in range(count):
        log = open(workdir / f"worker-{label}-{i}.log", "wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hostingmail", "worker", *pool, "-Q", queue,
             "-n", f"bench{i}-{label}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
             "--loglevel=INFO"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def wait_ready(workdir: Path, label: str, count: int, timeout: float = 120) -> None:
    """Until every worker has logged that it is ready: starting Django and Celery is not part of the figure."""
    deadline = time.monotonic() + timeout
    logs = [workdir / f"worker-{label}-{i}.log" for i in range(count)]
    while not all(b" ready." in log.read_bytes() for log in logs):
        if time.monotonic() > deadline:
            raise SystemExit(f"workers not ready after {timeout:.0f} s:\n" + logs[0].read_text(errors="replace"))
        time.sleep(0.1)


def cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """User and system time of these processes so far (Linux /proc)."""
    total = 0
    for proc in procs:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def measure_delivery(*, args, env: dict, sender: str, reuse: bool, workdir: Path) -> tuple[float, int, float]:
    """msgs/s, messages not delivered in time, and the workers' CPU time per message delivered, in ms."""
    from celery import current_app

    label = "reuse" if reuse else "noreuse"
    queue = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    worker_env = {**env, "DELIVERY_REUSE_SECONDS": "30" if reuse else "0"}
    ids = queue_messages(args.n, args.size, sender)
    workers = run_workers(worker_env, queue, args.workers, workdir, label, args.concurrency)
    try:
        wait_ready(workdir, label, args.workers)
        cpu = cpu_seconds(workers)
        started = time.perf_counter()
        for pk in ids:
            current_app.send_task("relay.tasks.deliver_message", args=[pk], queue=queue)
        deadline = time.monotonic() + args.timeout
        done = 0
        while done < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
            done = delivered(ids)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(workers) - cpu
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(30)
    return done / seconds, len(ids) - done, cpu * 1000 / max(done, 1)


def measure_accept(env: dict, cert: Path, key: Path, logins, args) -> float:
    relay_env = {**env, "CELERY_BROKER_URL": "filesystem://"}  # accepted mail waits in the queue meanwhile
    relay = start_relay(relay_env, cert, key, 1)
    try:
        common = dict(host="127.0.0.1", port=relay.port, logins=logins, recipient=RECIPIENT, sessions=20,
                      size=args.size)
        asyncio.run(smtpload.run_load(**common, messages=0))  # warm the logins
        return asyncio.run(smtpload.run_load(**common, messages=5, messages_only=True)).rate
    finally:
        relay.stop()


def broker_url(redis_url: str) -> str:
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_timeout=2).ping()
        return redis_url
    except Exception:
        return "filesystem://"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (a fresh database is made there)")
    parser.add_argument("-n", type=int, default=400, help="messages per run")
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="deliveries at once per worker process (threads; 1 = solo pool)")
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternating")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hm-bench-delivery-"))
    db_url, drop_database = create_database(args.database_url, workdir)
    for folder in ("broker/out", "broker/processed"):
        (workdir / folder).mkdir(parents=True)
    sink_port = free_port()
    # A TTL of 5 minutes, typical of MX records: workers keep the answers for that long.
    dns = DnsServer(mx=[f"{DOMAIN},mx.{DOMAIN},10"], host=[f"mx.{DOMAIN},127.0.0.1"], raw=["--local-ttl=300"]).start()
    broker = broker_url(args.redis_url)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "VAR_DIR": str(workdir),
           "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING", "DEBUG": "false", "PYTHONPATH": str(ROOT),
           "CELERY_BROKER_URL": broker, "DELIVERY_PORT": str(sink_port), "DELIVERY_ALLOW_PRIVATE": "true",
           "DNS_NAMESERVERS": "127.0.0.1", "DNS_PORT": str(dns.port), "DELIVERY_HELO_NAME": "bench.test"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(env)
    sink_argv = ["/usr/sbin/smtp-sink", *(["-u", "root"] if os.getuid() == 0 else []), f"127.0.0.1:{sink_port}",
                 "1024"]
    sink = subprocess.Popen(sink_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(sink_port, proc=sink)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from django.db import connections

        from relay.tls import make_self_signed

        cert, key = workdir / "bench.crt", workdir / "bench.key"
        make_self_signed(cert, key, hostname="localhost")
        logins = seed(20, 1)  # (username, secret, sender) of one customer's mailbox
        sender = logins[0][2]
        connections.close_all()
        db_label = "PostgreSQL" if args.database_url else "SQLite"
        print(f"{args.n} messages of {args.size // 1024} KB, {args.workers} worker processes × {args.concurrency} "
              f"deliveries at once, smtp-sink MX, "
              f"database {db_label}, broker {broker.split('://')[0]}", flush=True)
        results = {False: [], True: []}
        for reuse in [False, True] * args.rounds:  # alternating, so a growing database favours neither
            rate, missing, cpu = measure_delivery(args=args, env=env, sender=sender, reuse=reuse, workdir=workdir)
            results[reuse].append(rate)
            print(f"delivery {'with' if reuse else 'without'} connection reuse: {rate:8.1f} msgs/s, "
                  f"workers' CPU {cpu:.1f} ms a message"
                  + (f"  ({missing} not delivered in time)" if missing else ""), flush=True)
        results = {reuse: sum(rates) / len(rates) for reuse, rates in results.items()}
        print(f"mean of {args.rounds} runs each: without reuse {results[False]:.1f} msgs/s, "
              f"with reuse {results[True]:.1f} msgs/s")
        accept = measure_accept(env, cert, key, logins, args)
        print(f"relay accept rate (1 process, 20 sessions, messages only): {accept:8.1f} msgs/s")
        print(f"reuse / no reuse: {results[True] / results[False]:.2f}; "
              f"delivery (reuse) / accept: {results[True] / accept:.2f} (>= 1.00 keeps up)")
    finally:
        sink.terminate()
        sink.wait(10)
        dns.stop()
        drop_database()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("kept", workdir)


if __name__ == "__main__":
    main()
