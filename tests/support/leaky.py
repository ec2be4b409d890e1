"""Run on its own by tests/test_leftover_processes.py (not collected by the suite: no test_ prefix)."""

import subprocess


def test_leaves_a_process_behind():
    subprocess.Popen(["sleep", "120"])  # not waited for: still running when the run ends
