"""Relays for tests: run_relay in a thread of the test process, or `manage.py runrelay` as a process of its own,
on this test's database."""

import json
import os
import signal
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

from relay.smtpd.server import Relay, RelayConfig, run_relay
from tests.support.smtp import HOST

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningRelay:
    relay: Relay
    submission: int
    smtps: int
    http: int | None
    thread: threading.Thread
    stop_event: threading.Event = field(default_factory=threading.Event)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the relay did not stop"


def start_relay(cert: Path, key: Path, **options) -> RunningRelay:
    """Run relay.smtpd.server.run_relay in a thread, on free ports unless given; returns once it listens."""
    config = RelayConfig(cert=cert, key=key, submission=(HOST, options.pop("submission_port", 0)),
                         smtps=(HOST, options.pop("smtps_port", 0)), grace=options.pop("grace", 5.0), **options)
    started, holder, errors = threading.Event(), {}, []

    def ready(relay):
        holder["relay"] = relay
        started.set()

    def target():
        try:
            run_relay(config, ready=ready, stop_event=stop_event, install_signals=False)
        except BaseException as error:  # surfaced to the test below
            errors.append(error)
            started.set()

    stop_event = threading.Event()
    thread = threading.Thread(target=target, name="relay", daemon=True)
    thread.start()
    assert started.wait(15), "the relay did not start"
    if errors:
        raise errors[0]
    relay = holder["relay"]
    return RunningRelay(relay=relay, submission=relay.ports["submission"], smtps=relay.ports["smtps"],
                        http=relay.ports.get("http"), thread=thread, stop_event=stop_event)


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a process that must use this test's database (see tests/support/child_settings.py)."""
    db = {k: v for k, v in connection.settings_dict.items() if k != "TEST"}
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.support.child_settings",
               HM_TEST_DATABASE=json.dumps(db, default=str), VAR_DIR=str(settings.VAR_DIR),
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class RelayProcess:
    proc: subprocess.Popen
    submission: int
    smtps: int
    http: int
    log_path: Path

    @property
    def ports(self) -> dict[str, int]:
        return {"submission": self.submission, "smtps": self.smtps, "http": self.http}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str) -> float:
        """One sample of the process's /metrics, e.g. 'hostingmail_smtp_auth_checks_total{method="argon2"}'
        (0 when it has none yet)."""
        with urllib.request.urlopen(f"http://{HOST}:{self.http}/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode
