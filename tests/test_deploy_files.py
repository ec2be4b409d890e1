"""The systemd units and the nginx example start what exists, with options the programs accept."""

import configparser
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "hostingmail" / "deploy"
UNITS = ["panel", "relay", "mx", "worker", "beat"]
INSTALL_DIR = "/opt/hostingmail"
VENV_BIN = Path(sys.executable).parent


def unit(name: str) -> configparser.ConfigParser:
    # systemd allows repeated keys and has no interpolation; keys keep their case.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / "systemd" / f"hostingmail-{name}.service").read_text())
    return parser


def exec_start(name: str) -> list[str]:
    argv = shlex.split(unit(name)["Service"]["ExecStart"])
    program = Path(argv[0])
    assert program.parent == Path(INSTALL_DIR) / ".venv" / "bin", argv[0]
    # The same program exists in this project's virtualenv, installed from pyproject.toml.
    assert (VENV_BIN / program.name).exists(), f"{program.name} is not installed by the project"
    return [program.name, *argv[1:]]


def run(argv: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env})


@pytest.mark.parametrize("name", UNITS)
def test_every_unit_runs_the_installed_code_as_its_own_user_with_the_env_file(name):
    parsed = unit(name)
    service = parsed["Service"]
    assert service["EnvironmentFile"] == "/etc/hostingmail/env"
    assert service["WorkingDirectory"] == INSTALL_DIR
    assert service["User"] == "hostingmail" and service["Restart"] == "on-failure"
    # ProtectSystem=strict leaves only the state directory writable; systemd creates it for the user.
    assert service["ProtectSystem"] == "strict" and service["StateDirectory"] == "hostingmail"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert parsed["Unit"]["Description"]


def test_panel_unit_serves_the_wsgi_application_with_valid_gunicorn_options():
    argv = exec_start("panel")
    assert argv[0] == "gunicorn"
    module, _, attr = argv[1].partition(":")
    assert module == "hostingmail.wsgi" and callable(getattr(importlib.import_module(module), attr))
    # gunicorn loads the application and validates every option without binding.
    result = run([*argv, "--check-config"])
    assert result.returncode == 0, result.stderr


def test_nginx_proxies_to_the_address_gunicorn_binds():
    argv = exec_start("panel")
    bind = argv[argv.index("--bind") + 1]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.search(rf"upstream hostingmail_panel \{{\s*server {re.escape(bind)};", nginx)
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx  # SECURE_PROXY_SSL_HEADER=true reads it
    static = re.search(r"location /static/ \{\s*alias ([^;]+);", nginx).group(1)
    assert static == f"{INSTALL_DIR}/staticfiles/"


def test_password_reset_links_reach_no_access_log():
    # The link's path holds its token: nginx does not log that location, and gunicorn logs no requests at all.
    nginx = (DEPLOY / "nginx.conf").read_text()
    reset = re.search(r"location /password-reset/ \{([^}]*)\}", nginx)
    assert reset and "access_log off;" in reset[1] and "proxy_pass http://hostingmail_panel;" in reset[1]
    assert not any(arg.startswith("--access-log") for arg in exec_start("panel"))


def test_relay_unit_runs_runrelay_with_options_it_accepts():
    argv = exec_start("relay")
    assert argv[:3] == ["python", "manage.py", "runrelay"]
    assert (ROOT / "manage.py").exists() and get_commands()["runrelay"] == "relay"
    options = load_command_class("relay", "runrelay").create_parser("manage.py", "runrelay").parse_args(argv[3:])
    assert options.processes >= 1
    assert unit("relay")["Service"]["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"  # 465/587 without root


def test_mx_unit_runs_runmx_on_port_25_without_root():
    argv = exec_start("mx")
    assert argv[:3] == ["python", "manage.py", "runmx"]
    assert get_commands()["runmx"] == "relay"
    options = load_command_class("relay", "runmx").create_parser("manage.py", "runmx").parse_args(argv[3:])
    assert options.processes >= 1 and options.http
    assert unit("mx")["Service"]["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"


@pytest.mark.parametrize("name, command", [("worker", "worker"), ("beat", "beat")])
def test_celery_units_load_the_project_app(name, command):
    argv = exec_start(name)
    assert argv[:4] == ["celery", "-A", "hostingmail", command]
    if command == "worker":  # threads share their claims and outcomes in one database round (relay.delivery.groupcommit)
        assert argv[argv.index("--pool") + 1] == "threads" and int(argv[argv.index("--concurrency") + 1]) >= 16
    from hostingmail.celery import app

    assert app.main == "hostingmail"
    # Celery imports the app named by -A and parses the subcommand's options; --help stops before it runs.
    result = run([*argv, "--help"])
    assert result.returncode == 0, result.stderr
    assert "accounts.tasks.recheck_domains" in {entry["task"] for entry in app.conf.beat_schedule.values()}
