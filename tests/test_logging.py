import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from hostingmail.logjson import REDACTED, JsonFormatter, ScrubSecrets

ROOT = Path(__file__).resolve().parents[1]
SECRET = "Tr0ub4dor&3-very-secret"


def emit(msg, *args, **extra) -> str:
    record = logging.getLogger("relay.server").makeRecord(
        "relay.server", logging.INFO, __file__, 1, msg, args, None, extra=extra)
    ScrubSecrets().filter(record)
    return JsonFormatter().format(record)


def test_one_json_line_with_the_extra_fields():
    line = emit("message %s accepted", "A1B2C3", session="s-17", queue_id="A1B2C3", customer=42,
                credential="app-printer", client_ip="192.0.2.7", result="accepted")
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "relay.server"
    assert entry["message"] == "message A1B2C3 accepted"
    assert entry["time"].endswith("+00:00")
    assert {k: entry[k] for k in ("session", "queue_id", "customer", "credential", "client_ip", "result")} == {
        "session": "s-17", "queue_id": "A1B2C3", "customer": 42, "credential": "app-printer",
        "client_ip": "192.0.2.7", "result": "accepted"}


def test_a_multi_line_message_stays_one_line():
    assert json.loads(emit("550 5.1.1 first\n550 5.1.1 second"))["message"] == "550 5.1.1 first\n550 5.1.1 second"


def test_never_a_secret():
    plain = base64.b64encode(f"\0info@alpha.test\0{SECRET}".encode()).decode()
    lines = [
        emit("login failed password=%s for %s", SECRET, "info@alpha.test"),
        emit("client said AUTH PLAIN %s", plain),
        emit("smart host smtp://relayuser:%s@smarthost.example.net:587", SECRET),
        emit('settings {"secret": "%s", "user": "x"}', SECRET),
        emit("auth attempt", password=SECRET, auth_data=plain, client_ip="192.0.2.7"),
        emit("credential made", details={"username": "app-1", "secret": SECRET}),
        emit("header Authorization: Bearer %s", "abcdefghijklmnopqrstuvwxyz0123"),
    ]
    for line in lines:
        assert "very-secret" not in line and plain not in line and "abcdefghijklmnop" not in line, line
        assert REDACTED in line, line
        json.loads(line)
    assert json.loads(lines[4])["client_ip"] == "192.0.2.7"
    assert json.loads(lines[5])["details"]["username"] == "app-1"


def test_ordinary_text_is_left_alone():
    message = "250 2.0.0 Ok: queued as 7F3A to bob@example.org via mx1.example.org:25"
    assert json.loads(emit(message))["message"] == message


def test_log_format_json_setting_writes_json_lines_without_secrets(tmp_path):
    code = (
        "import django, logging; django.setup();"
        f"logging.getLogger('relay.delivery').warning('retry with password=%s', {SECRET!r},"
        " extra={'queue_id': 'Q1', 'result': 'deferred'})"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "LOG_FORMAT": "json",
           "VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    entry = json.loads(lines[0])
    assert entry["logger"] == "relay.delivery" and entry["queue_id"] == "Q1" and entry["result"] == "deferred"
    assert "very-secret" not in done.stderr


def test_plain_format_is_scrubbed_too(tmp_path):
    code = f"import django, logging; django.setup(); logging.getLogger('x').warning('password=%s', {SECRET!r})"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "LOG_FORMAT": "plain",
           "VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert "password=[redacted]" in done.stderr and "very-secret" not in done.stderr
