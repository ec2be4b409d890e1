"""Memory of the relay's process tree while forty 24 MB messages arrive at once, with and without spooling.

    .venv/bin/python bench/spool_memory.py [--messages 40] [--size-mb 24] [--database-url postgres://...]

Starts `manage.py runrelay` twice on a fresh database (SQLite in a temporary folder unless --database-url):
once with RELAY_SPOOL_THRESHOLD=0 (content kept in memory, as before spooling) and once with the default (1 MiB).
Each time: warm up with one small message, then `--messages` clients each send one message of `--size-mb` MB
at once. It samples the summed RSS of the relay and its children (/proc) every 20 ms and prints the warm
baseline, the peak and what is still held 5 s after the last 250.
"""

import argparse
import os
import shutil
import smtplib
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.relay import RECIPIENT, create_database, seed, start_relay  # noqa: E402
from tests.support.smtp import auth_plain, client_context, send  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(pid: int) -> int:
    """Bytes resident in `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
        todo.extend(children.get(current, []))
    return total


def big_message(sender: str, size: int) -> bytes:
    line = b"x" * 76 + b"\r\n"
    return (f"From: {sender}\r\nTo: {RECIPIENT}\r\nSubject: large\r\n\r\n".encode() + line * (size // len(line)))


def one_message(port: int, login, data: bytes, start: threading.Barrier | None = None) -> int:
    client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test", timeout=600)
    with client:
        client.starttls(context=client_context())
        client.ehlo("bench.test")
        code, _ = auth_plain(client, login[0], login[1])
        assert code == 235
        if start is not None:  # every client logged in: the messages go at once
            start.wait()
        return send(client, sender=login[2], recipients=[RECIPIENT], data=data)[-1][0]


def measure(env: dict, cert: Path, key: Path, logins, messages: int, size: int) -> dict:
    relay = start_relay(env, cert, key, processes=1)
    try:
        pid = relay.proc.pid
        one_message(relay.port, logins[0], big_message(logins[0][2], 10_000))
        time.sleep(2)
        baseline = tree_rss(pid)
        peak, stop = [baseline], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], tree_rss(pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        data = [big_message(login[2], size) for login in logins[:messages]]
        started = time.monotonic()
        start = threading.Barrier(messages)
        with ThreadPoolExecutor(messages) as pool:
            codes = list(pool.map(lambda i: one_message(relay.port, logins[i], data[i], start), range(messages)))
        elapsed = time.monotonic() - started
        time.sleep(5)
        stop.set()
        sampler.join()
        return {"baseline": baseline, "peak": peak[0], "after": tree_rss(pid), "accepted": codes.count(250),
                "seconds": elapsed}
    finally:
        relay.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--size-mb", type=float, default=24)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hm-spool-"))
    db_url, drop_database = create_database(args.database_url, workdir)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "VAR_DIR": str(workdir),
           "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING", "DEBUG": "false", "PYTHONPATH": str(ROOT),
           "RELAY_CONNECTION_LIMIT_EXEMPT": "127.0.0.1", "RELAY_MAX_MESSAGE_SIZE": str(64 * 1024 * 1024),
           # Cheap password hashes: forty logins at once are not what is measured.
           "MAIL_HASH_TIME_COST": "1", "MAIL_HASH_MEMORY_KIB": "1024"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(env)
    for folder in ("broker/out", "broker/processed"):
        (workdir / folder).mkdir(parents=True)
    try:
        import subprocess

        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from relay.smtpd.tls import make_self_signed

        cert, key = workdir / "bench.crt", workdir / "bench.key"
        make_self_signed(cert, key, hostname="localhost")
        logins = seed(args.messages, args.messages)
        size = int(args.size_mb * 1_000_000)
        mib = 1024 * 1024
        for label, threshold in (("in memory (RELAY_SPOOL_THRESHOLD=0)", "0"), ("spooled past 1 MiB", str(mib))):
            result = measure({**env, "RELAY_SPOOL_THRESHOLD": threshold}, cert, key, logins, args.messages, size)
            print(f"{label}: {result['accepted']}/{args.messages} accepted in {result['seconds']:.1f} s; relay tree "
                  f"RSS warm {result['baseline'] / mib:.0f} MiB, peak {result['peak'] / mib:.0f} MiB, "
                  f"5 s after {result['after'] / mib:.0f} MiB", flush=True)
    finally:
        drop_database()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
