"""`make run` end to end: migrate, demo_data and rundev on the embedded default (SQLite, filesystem broker, a
development certificate made on first run), then a message submitted with a printed demo login travels through
the relay and the worker to an MX on loopback; SIGTERM stops all three processes."""

import json
import os
import signal
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from relay.smtpd.supervisor import cores
from tests.peers import DnsServer, free_port, wait_for_port
from tests.support.mx import start_mx

ROOT = Path(__file__).resolve().parents[1]


def _manage(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _wait(predicate, timeout: float, what: str, log_path: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"{what} within {timeout:g} s; make run printed:\n{log_path.read_text(errors='replace')[-4000:]}")


def test_make_run_stack_accepts_and_delivers_with_the_printed_demo_login(tmp_path):
    mx = start_mx()
    dns = DnsServer(mx=["example.org,mx.example.org,10"], host=["mx.example.org,127.0.0.1"]).start()
    panel, submission, smtps, mx_port = free_port(), free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "CELERY_", "PYTEST"))}
    env.update(
        DJANGO_SETTINGS_MODULE="hostingmail.settings", VAR_DIR=str(tmp_path / "var"),
        RELAY_SUBMISSION_LISTEN=f"127.0.0.1:{submission}", RELAY_SMTPS_LISTEN=f"127.0.0.1:{smtps}",
        RELAY_PUBLIC_SUBMISSION_PORT=str(submission), RELAY_PUBLIC_SMTPS_PORT=str(smtps), MX_LISTEN=f"127.0.0.1:{mx_port}",
        # Only the way out differs from `make run`: DNS and the "remote" MX are on loopback.
        DNS_NAMESERVERS="127.0.0.1", DNS_PORT=str(dns.port), DNS_TIMEOUT="2",
        DELIVERY_PORT=str(mx.port), DELIVERY_ALLOW_PRIVATE="true",
    )
    (tmp_path / "var").mkdir()  # as `make run` does
    log_path = tmp_path / "make-run.log"
    proc = None
    try:
        migrated = _manage(env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        demo = _manage(env, "demo_data", "--json")
        assert demo.returncode == 0, demo.stderr
        logins = {login["username"]: login["password"] for login in json.loads(demo.stdout)["logins"]}
        assert {"support", "reseller", "shop", "direct"} <= set(logins)
        address = next(name for name in logins if "@" in name)

        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "manage.py", "rundev", "--panel", f"127.0.0.1:{panel}"],
                                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for port in (panel, submission, smtps, mx_port):
            wait_for_port(port, timeout=60, proc=proc)
        if cores() > 1:  # the relay and the MX run one process per core by default, under a supervisor each
            assert log_path.read_text().count(f"supervising {cores()} relay processes") == 2, log_path.read_text()
        with smtplib.SMTP("127.0.0.1", mx_port, timeout=30) as inbound:  # the MX: port 25's rules, no AUTH
            code, features = inbound.ehlo("mta.example.org")
            assert code == 250 and b"STARTTLS" in features and b"AUTH" not in features
        assert (tmp_path / "var" / "tls" / "relay-dev.crt").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{panel}/login/", timeout=10) as page:
            assert page.status == 200 and b"password" in page.read().lower()

        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", submission, timeout=30) as client:
            client.starttls(context=context)
            client.login(address, logins[address])
            body = f"From: {address}\r\nTo: friend@example.org\r\nSubject: make run\r\n\r\nHello.\r\n"
            client.sendmail(address, ["friend@example.org"], body.encode())

        delivered = _wait(lambda: mx.delivered_to("friend@example.org"), 60, "the worker delivered nothing", log_path)
        assert b"Subject: make run" in delivered[0].content
        database = sqlite3.connect(tmp_path / "var" / "hostingmail.sqlite3")
        state = _wait(lambda: database.execute("SELECT state FROM relay_queuedmessage").fetchone(), 10,
                      "no queued message", log_path)
        _wait(lambda: database.execute("SELECT state FROM relay_queuedmessage").fetchone()[0] == "delivered", 20,
              f"the message stayed {state[0]}", log_path)
        database.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log_path.read_text(errors="replace")[-4000:]
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        mx.stop()
        dns.stop()
