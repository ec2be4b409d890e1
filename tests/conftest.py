import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from django.utils import translation

from relay.smtpd.tls import make_self_signed
from tests.peers import DnsServer, free_port, wait_for_port
from tests.support.factories import PASSWORD, make_cast
from tests.support.processes import RUN_MARKER, command_line, marked, parent_of
from tests.support.relays import ROOT, RelayProcess, RunningRelay, child_env, start_relay
from tests.support.smtp import HOST

# Every process this run starts inherits the marker (xdist's workers too: the controller sets it first), so the
# run can check at its end that it left none behind.
os.environ.setdefault(RUN_MARKER, f"{os.getpid()}-{time.time_ns()}")
# Seconds for processes already told to stop to finish.
LEFTOVER_WAIT = float(os.environ.get("HM_TEST_LEFTOVER_WAIT", "10"))


def _left_behind() -> list[int]:
    """The run's processes still alive, except this process's own multiprocessing resource tracker (a run without
    xdist hashes in process: its tracker ends with this process, after this check)."""
    return [pid for pid in marked(os.environ[RUN_MARKER])
            if not (parent_of(pid) == os.getpid() and "multiprocessing.resource_tracker" in command_line(pid))]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks once all have ended
        return
    deadline = time.monotonic() + LEFTOVER_WAIT
    while (left := _left_behind()) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not left:
        return
    lines = [f"{pid} {command_line(pid)[:200]}" for pid in left]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "processes of this test run still running", red=True)
        reporter.write_line("\n".join(lines))
    else:
        print("processes of this test run still running:", *lines, sep="\n", file=sys.stderr)
    for pid in left:  # the run's own: stopped, so that they do not outlive it either
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _flush_by_delete(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    """PostgreSQL's flush after a transactional test as one DELETE a table, in the flush's transaction: the same
    empty tables as Django's single TRUNCATE (foreign keys are deferred to the commit), without the new files a
    TRUNCATE makes for every table and index, which cost a second or more a test. Sequences go on as they do after
    Django's TRUNCATE; a flush that resets them, or cascades, is Django's own."""
    if reset_sequences or allow_cascade:
        return _truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]


_truncate = PostgresOperations.sql_flush
PostgresOperations.sql_flush = _flush_by_delete


@pytest.fixture(scope="session", autouse=True)
def audit_rows_hold_no_secrets():
    """Every audit row written in this test process, by whichever test and flow, is scanned for secrets; the
    session fails at its end if one held any (issue 17: redaction by kind, proven over the suite's flows)."""
    from django.db.models.signals import post_save

    from accounts.models import AuditEntry
    from tests.support.audit_scan import secrets_in

    leaks = []

    def scan(sender, instance, created, **kwargs):
        found = secrets_in(instance)
        if found:
            leaks.append((instance.action, found))

    post_save.connect(scan, sender=AuditEntry, weak=False, dispatch_uid="audit_rows_hold_no_secrets")
    yield
    post_save.disconnect(sender=AuditEntry, dispatch_uid="audit_rows_hold_no_secrets")
    assert not leaks, f"audit rows with secrets: {leaks[:10]}"


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the default language: a request's language stays active on its thread after it."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def cast(db):
    return make_cast()


@pytest.fixture
def dns_server(settings):
    """Start dnsmasq with the given records and point the project's resolver at it: dns_server(txt=[...])."""
    servers = []

    def start(**records) -> DnsServer:
        server = DnsServer(**records).start()
        servers.append(server)
        settings.DNS_NAMESERVERS = ["127.0.0.1"]
        settings.DNS_PORT = server.port
        settings.DNS_TIMEOUT = 2.0
        return server

    yield start
    for server in servers:
        server.stop()


# --- relays: in a thread of the test process, or as processes of their own --------------------------------


@pytest.fixture(scope="session")
def relay_cert(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("relay-tls")
    cert, key = folder / "relay.crt", folder / "relay.key"
    make_self_signed(cert, key, hostname="relay.test")
    return cert, key


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


# --- relay processes ---------------------------------------------------------------------------------------


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


# --- the MX (inbound, port 25) ------------------------------------------------------------------------------


@pytest.fixture
def mx_factory(transactional_db, relay_cert):
    """start(**MxConfig options) -> RunningMx (tests/support/inbound.py); stopped after the test."""
    from tests.support.inbound import start_mx_server

    running = []

    def start(**options):
        server = start_mx_server(*relay_cert, **options)
        running.append(server)
        return server

    yield start
    for server in running:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture(scope="session")
def rspamd_server():
    """Debian's rspamd with a private configuration (tests/support/rspamd.py), shared by the session's tests."""
    from tests.support.rspamd import running_rspamd

    with running_rspamd() as server:
        yield server


@pytest.fixture
def rspamd(rspamd_server, settings):
    """The session's rspamd, switched on for this test's MX and panel."""
    settings.RSPAMD_URL = rspamd_server.url
    settings.RSPAMD_CONTROLLER_URL = rspamd_server.controller_url
    from tests.support.rspamd import PASSWORD

    settings.RSPAMD_PASSWORD = PASSWORD
    return rspamd_server
