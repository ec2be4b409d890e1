"""Delivery benchmark: N 10 KB messages accepted by the relay, then delivered by two Celery worker processes to a
local smtp-sink MX, with and without connection reuse, beside the relay's accept rate on the same machine and
database.

    .venv/bin/python bench/delivery.py                      # SQLite in a temporary directory, 400 messages
    .venv/bin/python bench/delivery.py --database-url postgres://postgres@127.0.0.1:5432/hm -n 1000

MX answers come from dnsmasq on loopback (sink.test MX -> 127.0.0.1); the broker is Redis when it answers at
--redis-url (a queue of this run's own), else the embedded filesystem broker. Each round the relay (one process)
accepts the N messages under bench/relay.py's load (20 sessions, STARTTLS + AUTH, messages only) while no worker
runs, and the tasks it published -- several messages each when they were accepted together -- are handed to the
workers as they are. The delivery clock runs from the first task sent to the last message marked delivered in
the database; delivery keeps up when its msgs/s is at least the accept rate.
"""

import argparse
import asyncio
import base64
import json
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

from bench import cpu, smtpload  # noqa: E402
from bench.relay import create_database, seed, start_relay  # noqa: E402
from tests.peers import DnsServer, free_port, wait_for_port  # noqa: E402

DOMAIN = "sink.test"


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


def accept(env: dict, cert: Path, key: Path, logins, args) -> tuple[float, list[list[int]]]:
    """The relay accepts N messages to the MX's domain (20 sessions, STARTTLS + AUTH, messages only) while no
    worker runs: its notices wait in the embedded filesystem broker. Returns the accept rate and the relay's tasks
    (the message ids of each), which the workers are then given exactly as the relay made them."""
    outbox = Path(env["VAR_DIR"]) / "broker" / "out"
    for old in outbox.glob("*.msg"):
        old.unlink()
    relay = start_relay({**env, "CELERY_BROKER_URL": "filesystem://"}, cert, key, 1)
    try:
        common = dict(host="127.0.0.1", port=relay.port, logins=logins, recipient=f"rcpt@{DOMAIN}", sessions=20,
                      size=args.size)
        asyncio.run(smtpload.run_load(**common, messages=0))  # warm the logins
        load = asyncio.run(smtpload.run_load(**common, messages=-(-args.n // 20), messages_only=True))
    finally:
        relay.stop()  # after its notices are published
    return load.rate, published_tasks(outbox)


def published_tasks(outbox: Path) -> list[list[int]]:
    """The delivery tasks waiting in the embedded filesystem broker (the message ids of each), in the order they
    were published; taken out of it, so that they are sent to the workers only as the benchmark says."""
    tasks = []
    for path in sorted(outbox.glob("*.msg"), key=lambda p: int(p.name.partition("_")[0])):
        payload = json.loads(path.read_bytes())
        path.unlink()
        if payload["headers"]["task"] == "relay.tasks.deliver_messages":
            body = payload["body"]
            if payload["properties"].get("body_encoding") == "base64":
                body = base64.b64decode(body)
            tasks.append(json.loads(body)[0][0])
    return tasks


def measure_delivery(*, args, env: dict, tasks: list[list[int]], reuse: bool, workdir: Path
                     ) -> tuple[float, int, dict]:
    """msgs/s, messages not delivered in time, and CPU time per message delivered in ms: the workers', the
    database server's (PostgreSQL), the broker's (Redis) and the MX's."""
    from celery import current_app

    label = "reuse" if reuse else "noreuse"
    queue = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    worker_env = {**env, "DELIVERY_REUSE_SECONDS": "30" if reuse else "0"}
    ids = [pk for task in tasks for pk in task]
    workers = run_workers(worker_env, queue, args.workers, workdir, label, args.concurrency)
    try:
        wait_ready(workdir, label, args.workers)
        groups = {"workers": lambda: [p.pid for p in workers], "database": lambda: cpu.named("postgres"),
                  "broker": lambda: cpu.named("redis-server"), "MX": lambda: cpu.named("smtp-sink")}
        meter = cpu.Meter(groups)
        meter.start()
        started = time.perf_counter()
        for task in tasks:
            current_app.send_task("relay.tasks.deliver_messages", args=[task], queue=queue)
        deadline = time.monotonic() + args.timeout
        done = 0
        while done < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
            done = delivered(ids)
        seconds = time.perf_counter() - started
        spent = meter.stop()
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(30)
    return done / seconds, len(ids) - done, {label: value * 1000 / max(done, 1) for label, value in spent.items()
                                              if value}


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
    parser.add_argument("--concurrency", type=int, default=16,
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

        from relay.smtpd.tls import make_self_signed

        cert, key = workdir / "bench.crt", workdir / "bench.key"
        make_self_signed(cert, key, hostname="localhost")
        logins = seed(20, 1)  # (username, secret, sender) of one customer's mailbox
        connections.close_all()
        db_label = "PostgreSQL" if args.database_url else "SQLite"
        print(f"{args.n} messages of {args.size // 1024} KB accepted by the relay, then delivered by {args.workers} "
              f"worker processes × {args.concurrency} deliveries at once to an smtp-sink MX; "
              f"database {db_label}, broker {broker.split('://')[0]}", flush=True)
        results, accepts, sizes = {False: [], True: []}, [], []
        for reuse in [False, True] * args.rounds:  # alternating, so a growing database favours neither
            accept_rate, tasks = accept(env, cert, key, logins, args)
            accepts.append(accept_rate)
            sizes += [len(task) for task in tasks]
            rate, missing, spent = measure_delivery(args=args, env=env, tasks=tasks, reuse=reuse, workdir=workdir)
            results[reuse].append(rate)
            print(f"accepted {accept_rate:6.1f} msgs/s in {len(tasks)} tasks; delivered "
                  f"{'with' if reuse else 'without'} connection reuse: {rate:6.1f} msgs/s, CPU ms a message: "
                  + ", ".join(f"{label} {value:.1f}" for label, value in spent.items())
                  + (f"  ({missing} not delivered in time)" if missing else ""), flush=True)
        results = {reuse: sum(rates) / len(rates) for reuse, rates in results.items()}
        accept_rate = sum(accepts) / len(accepts)
        print(f"mean of {args.rounds} runs each: without reuse {results[False]:.1f} msgs/s, "
              f"with reuse {results[True]:.1f} msgs/s; relay accept rate (1 process, 20 sessions, messages only) "
              f"{accept_rate:.1f} msgs/s; messages a task {sum(sizes) / len(sizes):.1f} (1 to {max(sizes)})")
        print(f"reuse / no reuse: {results[True] / results[False]:.2f}; "
              f"delivery (reuse) / accept: {results[True] / accept_rate:.2f} (>= 1.00 keeps up)")
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
