"""Relay fixtures: an in-process relay on free ports with a real certificate, relay processes, SMTP clients."""

import base64
import json
import os
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from relay.smtpd.server import Relay, RelayConfig, run_relay
from relay.smtpd.tls import make_self_signed
from tests.peers import free_port, wait_for_port
from tests.support.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@pytest.fixture(scope="session")
def relay_cert(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("relay-tls")
    cert, key = folder / "relay.crt", folder / "relay.key"
    make_self_signed(cert, key, hostname="relay.test")
    return cert, key


def client_context() -> ssl.SSLContext:
    # The test certificate is self-signed: the client checks TLS works, not who signed it.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


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


@pytest.fixture
def relay_factory(transactional_db, relay_cert):
    """start(**RelayConfig options) -> RunningRelay; every relay started is stopped after the test."""
    running = []

    def start(**options) -> RunningRelay:
        server = start_relay(*relay_cert, **options)
        running.append(server)
        return server

    yield start
    for server in running:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture
def relay(relay_factory) -> RunningRelay:
    return relay_factory()


# --- clients -----------------------------------------------------------------------------------------------


def submission_client(port: int, *, auth: tuple[str, str] | None = None, ehlo: str = "client.test") -> smtplib.SMTP:
    """smtplib on the STARTTLS port: EHLO, STARTTLS, EHLO, and AUTH PLAIN when given (user, password)."""
    client = smtplib.SMTP(HOST, port, local_hostname=ehlo, timeout=20)
    client.starttls(context=client_context())
    client.ehlo(ehlo)
    if auth is not None:
        code, reply = auth_plain(client, *auth)
        assert code == 235, (code, reply)
    return client


def smtps_client(port: int, *, auth: tuple[str, str] | None = None, ehlo: str = "client.test") -> smtplib.SMTP_SSL:
    client = smtplib.SMTP_SSL(HOST, port, local_hostname=ehlo, timeout=20, context=client_context())
    client.ehlo(ehlo)
    if auth is not None:
        code, reply = auth_plain(client, *auth)
        assert code == 235, (code, reply)
    return client


def auth_plain(client: smtplib.SMTP, user: str, password: str, authzid: str = "") -> tuple[int, bytes]:
    blob = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
    return client.docmd("AUTH", f"PLAIN {blob}")


def message(*, sender: str, to: str = "someone@example.org", subject: str = "Hello", body: str = "Hi there.\r\n",
            extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}\r\n{body}").encode()


def send(client: smtplib.SMTP, *, sender: str, recipients: list[str], data: bytes,
         mail_options: str = "") -> list[tuple[int, bytes]]:
    """MAIL, RCPT..., DATA with docmd so every reply is returned, not raised."""
    replies = [client.docmd("MAIL", f"FROM:<{sender}>{(' ' + mail_options) if mail_options else ''}")]
    replies += [client.docmd("RCPT", f"TO:<{r}>") for r in recipients]
    if all(code < 300 for code, _ in replies):
        code, reply = client.docmd("DATA")
        replies.append((code, reply))
        if code == 354:
            payload = data.replace(b"\r\n.", b"\r\n..")
            client.send(payload + (b"" if payload.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            replies.append(client.getreply())
    return replies


def swaks(port: int, *args: str, tls: str = "--tls", timeout: float = 30) -> subprocess.CompletedProcess:
    """Run swaks against the relay; fails (not skips) when swaks is missing."""
    binary = shutil.which("swaks")
    if binary is None:
        pytest.fail("swaks is not installed (Debian package swaks)")
    return subprocess.run([binary, "--server", HOST, "--port", str(port), tls, "--helo", "client.test",
                           "--timeout", "20", *args], capture_output=True, text=True, timeout=timeout)


# --- relay processes ---------------------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a process that must use this test's database (see tests/relay/child_settings.py)."""
    db = {k: v for k, v in connection.settings_dict.items() if k != "TEST"}
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.relay.child_settings",
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


@pytest.fixture
def relay_process(transactional_db, relay_cert, tmp_path):
    """relay_process(processes=1, grace=..., env={...}, args=[...]) -> RelayProcess: `manage.py runrelay` on free
    ports against this test's database; waits for the ports, stops (SIGTERM, then SIGKILL) after the test."""
    started = []

    def start(*, processes: int = 1, grace: float = 10.0, env: dict | None = None, args: list[str] = (),
              cert: Path | None = None, key: Path | None = None, submission: int | None = None,
              smtps: int | None = None, http: int | None = None) -> RelayProcess:
        ports = {"submission": submission or free_port(), "smtps": smtps or free_port(), "http": http or free_port()}
        log_path = tmp_path / f"relay-{len(started)}.log"
        command = [sys.executable, str(ROOT / "manage.py"), "runrelay",
                   "--submission", f"{HOST}:{ports['submission']}", "--smtps", f"{HOST}:{ports['smtps']}",
                   "--http", f"{HOST}:{ports['http']}", "--cert", str(cert or relay_cert[0]),
                   "--key", str(key or relay_cert[1]), "--processes", str(processes), "--grace", str(grace), *args]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=child_env(**(env or {})), stdout=log,
                                    stderr=subprocess.STDOUT)
        process = RelayProcess(proc=proc, log_path=log_path, **ports)
        started.append(process)
        try:
            for port in ports.values():
                wait_for_port(port, proc=proc, timeout=30)
        except Exception:
            process.stop()
            raise AssertionError(f"runrelay did not start:\n{process.log()}") from None
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def login(cast):
    """(address, password) of tenant A's mailbox, which has SMTP access."""
    return cast.a.mailbox.address, PASSWORD
