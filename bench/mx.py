"""The MX's accept rate beside a bare aiosmtpd, and LMTP delivery into Dovecot beside Dovecot's own LMTP fed directly.

    .venv/bin/python bench/mx.py                                   # accept rate only (SQLite)
    .venv/bin/python bench/mx.py --database-url postgres://postgres@127.0.0.1:5432/hostingmail   # and LMTP

Accept: `manage.py runmx` (SPF, DKIM and DMARC against a dnsmasq on loopback, every RCPT looked up, each message
committed before its 250) and bench/bare_smtpd.py --mx (aiosmtpd discarding everything), in the same run, with
the same load: 20 sessions at once, each EHLO + STARTTLS, then messages of 10 KB to 3 hosted recipients.
LMTP (PostgreSQL only: Dovecot reads the mailbox tables): the messages the MX accepted, delivered by the workers'
code (relay.delivery.attempts.deliver, 16 threads, one LMTP transaction per message) into a private Dovecot from
the shipped configuration; beside it the same number of messages fed by 16 threads straight to Dovecot's LMTP.
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

from bench import smtpload  # noqa: E402
from bench.relay import Server, create_database  # noqa: E402
from tests.peers import DnsServer, free_port  # noqa: E402

SENDER = "news@sender.bench"
RECIPIENTS = ["info@mx0.bench", "info@mx1.bench", "info@mx2.bench"]
TARGET_ACCEPT, TARGET_LMTP = 0.6, 0.5


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


def lmtp_rates(args, message_ids: list[int]) -> tuple[float, float]:
    from django.conf import settings
    from django.db import connections

    from relay.delivery import attempts
    from relay.models import QueuedMessage
    from tests.support.dovecot import running_dovecot

    ids = message_ids[:args.lmtp_messages]
    sample = bytes(QueuedMessage.objects.get(pk=ids[0]).content)
    with running_dovecot() as dovecot:
        settings.LMTP_URL = str(dovecot.lmtp_socket)

        def deliver(pk):
            try:
                return attempts.deliver(pk)
            finally:
                connections.close_all()

        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            states = list(pool.map(deliver, ids))
        ours = len(ids) / (time.perf_counter() - started)
        failed = [s for s in states if s != QueuedMessage.State.DELIVERED]
        if failed:
            print(f"  {len(failed)} messages not delivered: {failed[:5]}")

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
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(direct, range(len(ids))))
        theirs = len(ids) / (time.perf_counter() - started)
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (a fresh database is made there)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10, help="messages per session")
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two servers; keep each one's best")
    parser.add_argument("--lmtp-messages", type=int, default=300)
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
        best = {"bare aiosmtpd": 0.0, "runmx": 0.0}
        for n in range(args.rounds):
            for label in best:
                port = free_port()
                if label == "runmx":
                    argv = [sys.executable, "manage.py", "runmx", "--listen", f"127.0.0.1:{port}", "--cert", str(cert),
                            "--key", str(key), "--processes", "1"]
                else:
                    argv = [sys.executable, str(ROOT / "bench" / "bare_smtpd.py"), str(port), str(cert), str(key),
                            "--mx"]
                server = Server(label, argv, env, port, workdir / f"{label.split()[0]}-{n}.log",
                                uses_database=label == "runmx")
                try:
                    result = load(port, args.sessions, args.messages, args.size)
                finally:
                    server.stop()
                if result.errors:
                    print(f"  {label}: {len(result.errors)} errors, e.g. {result.errors[0]}")
                print(f"round {n + 1} {label:14s} {result.rate:7.1f} msgs/s  p50 {result.percentile(50) * 1000:6.1f} ms"
                      f"  p95 {result.percentile(95) * 1000:6.1f} ms", flush=True)
                best[label] = max(best[label], result.rate)
        db = "PostgreSQL" if args.database_url else "SQLite"
        ratio = best["runmx"] / best["bare aiosmtpd"]
        print(f"\nMX accept ({db}, {args.sessions} sessions x {args.messages} messages of {args.size // 1024} KB, "
              f"STARTTLS, 3 recipients): runmx {best['runmx']:.1f} msgs/s, bare aiosmtpd "
              f"{best['bare aiosmtpd']:.1f} msgs/s, ratio {ratio:.2f} (target >= {TARGET_ACCEPT})")
        if args.database_url:
            from relay.models import QueuedMessage

            ids = list(QueuedMessage.objects.filter(direction="inbound").order_by("id").values_list("pk", flat=True))
            ours, theirs = lmtp_rates(args, ids)
            print(f"LMTP delivery ({min(len(ids), args.lmtp_messages)} messages x 3 mailboxes, 16 threads): workers "
                  f"{ours:.1f} msgs/s, Dovecot's LMTP fed directly {theirs:.1f} msgs/s, ratio {ours / theirs:.2f} "
                  f"(target >= {TARGET_LMTP})")
        else:
            print("LMTP delivery: needs --database-url (Dovecot reads the mailbox tables from PostgreSQL)")
    finally:
        from django.db import connections

        connections.close_all()
        dns.stop()
        drop_database()


if __name__ == "__main__":
    main()
