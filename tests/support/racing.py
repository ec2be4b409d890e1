"""Races between OS processes on the test's database: each racer starts, says "ready", and waits until every
racer is ready before it goes, so they really run at the same moment.

Parent side: race([[module, arg, ...], ...]) -> the JSON each racer printed last.
Child side: start() sets Django up on the parent's database (tests/support/child_settings.py), then go()
reports ready and waits for the signal.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def race(commands: list[list[str]], **env: str) -> list[dict]:
    import pytest

    from tests.support.relays import child_env

    environment = child_env(PYTHONPATH=str(ROOT), **env)
    procs = [subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=environment, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for command in commands]
    try:
        for proc in procs:
            line = proc.stdout.readline()
            if line.strip() != "ready":
                pytest.fail(f"racer did not start: {line!r}")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def start() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.child_settings")
    import django

    django.setup()


def go() -> None:
    from django.db import connection

    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()


def report(result: dict) -> None:
    print(json.dumps(result), flush=True)
