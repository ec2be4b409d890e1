"""A relay killed with SIGKILL leaves no process behind: its Argon2 workers and their resource tracker exit, and
with --processes N the supervised relays stop too."""

import signal
import time

import pytest

from tests.support.processes import alive, command_line, descendants
from tests.support.smtp import submission_client

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
