"""Management commands run as an operator runs them: a process of their own on the test's database."""

import json
import subprocess
import sys

from django.conf import settings

from tests.support.relays import child_env


def manage(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`manage.py <args>`; with check, a zero exit is asserted (stderr shown when not)."""
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=child_env(**(env or {})),
                          capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def manage_json(*args: str, env: dict | None = None) -> dict:
    return json.loads(manage(*args, "--json", env=env).stdout)
