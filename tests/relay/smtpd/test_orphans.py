"""A relay killed with SIGKILL leaves no process behind: its Argon2 workers and their resource tracker exit, and
with --processes N the supervised relays stop too."""

import signal
import subprocess
import sys
import time

import pytest

from relay.smtpd.supervisor import READY_ENV, SUPERVISOR_ENV
from tests.support.processes import alive, command_line, descendants
from tests.support.relays import ROOT, child_env
from tests.peers import free_port
from tests.support.smtp import HOST, submission_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("processes", [1, 2])
def test_hash_workers_exit_when_the_relay_is_killed(relay_process, login, processes):
    process = relay_process(processes=processes)
    with submission_client(process.submission, auth=login):  # a hash: the worker processes now exist
        pass
    tree = descendants(process.proc.pid)
    assert any("multiprocessing" in command_line(pid) for pid in tree), [command_line(pid) for pid in tree]
    process.proc.send_signal(signal.SIGKILL)
    process.proc.wait(10)
    # A supervised relay stops as on SIGTERM (half a second to notice, then its threads and hash workers close):
    # seconds on a loaded machine, so the wait is generous; what matters is that nothing is left.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in tree):
        time.sleep(0.1)
    assert [command_line(pid) for pid in tree if alive(pid)] == []


def test_a_supervised_relay_whose_supervisor_died_while_it_started_stops(relay_cert, tmp_path):
    """The supervisor killed before its child reached its watch: the child, re-parented by then, must not take its
    new parent (init, or the test runner here) for the supervisor and serve on as an orphan."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    log_path = tmp_path / "child.log"
    command = [sys.executable, str(ROOT / "manage.py"), "runrelay", "--reuse-port", "--processes", "1",
               "--submission", f"{HOST}:{free_port()}", "--smtps", "off", "--http", "off",
               "--cert", str(relay_cert[0]), "--key", str(relay_cert[1]), "--grace", "1"]
    env = child_env(**{READY_ENV: str(tmp_path / "ready"), SUPERVISOR_ENV: str(gone.pid)})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert proc.wait(60) in (0, -signal.SIGTERM), log_path.read_text()  # stopped, whether serving yet or not
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_hash_worker_whose_starter_died_before_it_started_exits():
    """accounts.hashing's workers are handed their starter's pid; one that starts after that process died (so it
    was re-parented before it could look) exits instead of running on."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    code = ("import time\n"
            "from accounts.hashing import _worker_start\n"
            f"_worker_start({gone.pid})\n"
            "time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        assert proc.wait(20) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
