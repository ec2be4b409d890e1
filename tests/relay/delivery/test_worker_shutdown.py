"""`celery -A hostingmail worker --beat` (what `make run` and small installations run) stops when a signal reaches
its whole process group, as systemd's stop (SIGTERM) and Ctrl-C (SIGINT) send it, also after it has delivered mail."""

import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from relay.handoff import DELIVER_MESSAGES
from relay.models import QueuedMessage
from tests.support.delivery import mx, queue, routes  # noqa: F401
from tests.support.processes import alive, descendants
from tests.support.workers import broker_env, celery_processes, wait_until  # noqa: F401


# systemd's stop (SIGTERM to the group); Ctrl-C twice in a terminal (a cold shutdown); SIGTERM to the group
# followed by SIGQUIT to the main process (an impatient operator: cold shutdown while the warm one runs).
STOPS = {
    "sigterm-group": [("group", signal.SIGTERM)],
    "ctrl-c-twice": [("group", signal.SIGINT), ("group", signal.SIGINT)],
    "sigterm-then-sigquit": [("group", signal.SIGTERM), ("main", signal.SIGQUIT)],
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop", list(STOPS))
def test_worker_with_beat_stops_on_a_signal_to_its_group_after_delivering(cast, routes, mx, celery_processes,
                                                                          tmp_path, stop):
    env = broker_env("filesystem://", tmp_path, DELIVERY_SWEEP_SECONDS=1)
    worker = celery_processes("worker", env, "--beat", "--concurrency", "2", new_session=True)
    # A message whose task was lost a while ago: beat's first sweep hands it to the worker (a fresh one waits for
    # its own task a minute before the sweep takes it, attempts.due_message_ids).
    message = queue(cast.a, "bob@b.test", subject="before shutdown",
                    next_attempt_at=timezone.now() - timedelta(minutes=5))

    def delivered():
        message.refresh_from_db()
        return message.state == QueuedMessage.State.DELIVERED

    # No task is sent: beat's sweep hands the message over, so beat and the pool both have worked.
    wait_until(delivered, timeout=90, what="delivery by the worker", processes=[worker])
    wait_until(lambda: "beat: Starting" in worker.log(), timeout=30, what="beat running", processes=[worker])
    assert DELIVER_MESSAGES in worker.log()
    family = {worker.proc.pid, *descendants(worker.proc.pid)}
    assert len(family) >= 3, "the worker, its pool and its beat process"

    for target, signum in STOPS[stop]:
        (os.killpg if target == "group" else os.kill)(worker.proc.pid, signum)
        time.sleep(0.5)
    try:
        worker.proc.wait(60)  # a warm shutdown on a loaded machine; a hang is for ever
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker hangs after {stop}:\n{worker.log()[-3000:]}")
    wait_until(lambda: not any(alive(pid) for pid in family), timeout=10, what="every process of the worker gone",
               processes=[worker])
    if stop == "sigterm-group":
        assert worker.proc.returncode == 0, worker.log()[-3000:]
