"""Management commands as an operator runs them: `manage.py <args>` parsed from its command line, with its exit code,
stdout and stderr, on the test's database.

`manage` runs the command in this process, as `manage.py` would (Django's run_from_argv: argument errors exit 2,
a CommandError is its message on stderr and exit 1); `manage_process` starts `manage.py` as a process of its own,
for another environment and for what only a real process shows. A process costs about two seconds of start-up.
"""

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.db import connections

from tests.support.relays import child_env


def manage(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`manage.py <args>`; with check, a zero exit is asserted (stderr shown when not). With env, in a process."""
    if env:
        return manage_process(*args, env=env, check=check)
    stdout, stderr = io.StringIO(), io.StringIO()
    # The command line closes the database connections at the end; here they are the test's own.
    with redirect_stdout(stdout), redirect_stderr(stderr), mock.patch.object(connections, "close_all"):
        command = load_command_class(get_commands()[args[0]], args[0])
        try:
            command.run_from_argv(["manage.py", *args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    return _checked(subprocess.CompletedProcess(["manage.py", *args], code, stdout.getvalue(), stderr.getvalue()),
                    check)


def manage_process(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=child_env(**(env or {})),
                          capture_output=True, text=True, timeout=120)
    return _checked(done, check)


def _checked(done: subprocess.CompletedProcess, check: bool) -> subprocess.CompletedProcess:
    if check:
        assert done.returncode == 0, done.stderr
    return done


def manage_json(*args: str, env: dict | None = None) -> dict:
    return json.loads(manage(*args, "--json", env=env).stdout)
