"""The process boundaries hold: import-linter's contracts (pyproject.toml), and a real relay process that accepted
and handed over a message without loading the worker's delivery code or the panel's pages."""

import json
import re
import time

import pytest
from importlinter.cli import lint_imports

from tests.support.smtp import message, send, submission_client
from tests.support.workers import broker_env


def test_import_contracts_are_kept():
    assert lint_imports(no_cache=True) == 0, "lint-imports: a contract in pyproject.toml is broken"


def imported_modules(log: str) -> set[str]:
    """Modules named by PYTHONPROFILEIMPORTTIME's lines: `import time: self | cumulative | name`."""
    return {m.group(1).strip() for m in re.finditer(r"^import time:[^|]*\|[^|]*\|\s*(\S+)", log, re.M)}


@pytest.mark.django_db(transaction=True)
def test_the_relay_process_accepts_and_hands_over_without_loading_delivery(relay_process, login, tmp_path):
    env = broker_env("filesystem://", tmp_path, PYTHONPROFILEIMPORTTIME="1")
    process = relay_process(env=env)
    with submission_client(process.submission, auth=login) as client:
        replies = send(client, sender=login[0], recipients=["bob@example.org"], data=message(sender=login[0]))
    assert replies[-1][0] == 250, replies
    deadline = time.monotonic() + 20
    while not list((tmp_path / "broker").glob("*.msg")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [published] = (tmp_path / "broker").glob("*.msg")
    assert json.loads(published.read_text())["headers"]["task"] == "relay.tasks.deliver_messages"
    assert process.stop() == 0
    modules = imported_modules(process.log())
    assert "relay.smtpd.server" in modules and "relay.submission.accept" in modules
    loaded = sorted(m for m in modules if m.startswith(("relay.delivery", "relay.panel")))
    assert loaded == [], f"the relay process loaded {loaded}"


def test_every_scheduled_task_is_found_by_autodiscovery():
    from hostingmail.celery import app

    app.loader.import_default_modules()  # what a worker and beat do at start
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled - set(app.tasks) == set()
    assert {"relay.tasks.deliver_messages", "relay.tasks.release_held", "relay.lockout_tasks.purge_old_auth_failures",
            "relay.tasks.sweep_queue"} <= set(app.tasks)
