"""The suite ends with no process of its own left: a run whose test leaves one behind fails and names it."""

import os
import subprocess
import sys

from tests.support.processes import RUN_MARKER
from tests.support.relays import ROOT


def test_a_run_that_leaves_a_process_behind_fails_and_names_it():
    env = {k: v for k, v in os.environ.items() if k not in (RUN_MARKER, "PYTEST_XDIST_WORKER")}
    env["HM_TEST_LEFTOVER_WAIT"] = "1"
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
                             "tests/support/leaky.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "processes of this test run still running" in result.stdout
    assert "sleep 120" in result.stdout
