"""DJANGO_ENV=production: `manage.py check --deploy` is clean with a real key and hosts, and refuses without."""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = secrets.token_urlsafe(60)


def check_deploy(tmp_path, **env) -> subprocess.CompletedProcess:
    # A clean environment: nothing from the developer's shell or the test run leaks into production settings.
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAR_DIR": str(tmp_path), "DJANGO_ENV": "production",
            "DJANGO_SETTINGS_MODULE": "hostingmail.settings"}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_a_real_secret_key_and_hosts(tmp_path):
    result = check_deploy(tmp_path, SECRET_KEY=SECRET_KEY, ALLOWED_HOSTS="panel.example.net")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize("env, message", [
    ({"ALLOWED_HOSTS": "panel.example.net"}, "needs SECRET_KEY"),
    ({"ALLOWED_HOSTS": "panel.example.net", "SECRET_KEY": "too-short"}, "needs SECRET_KEY"),
    ({"ALLOWED_HOSTS": "panel.example.net",
      "SECRET_KEY": "django-insecure-development-only-key-never-use-in-production"}, "needs SECRET_KEY"),
    ({"SECRET_KEY": SECRET_KEY}, "needs ALLOWED_HOSTS"),
    ({"SECRET_KEY": SECRET_KEY, "ALLOWED_HOSTS": "panel.example.net", "DEBUG": "true"}, "DEBUG must be off"),
])
def test_production_refuses_to_start_without_real_settings(tmp_path, env, message):
    result = check_deploy(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_check_deploy_flags_the_development_defaults(tmp_path):
    result = check_deploy(tmp_path, DJANGO_ENV="development")
    assert result.returncode == 1  # --deploy warns about the development key and DEBUG, as it should
    assert "security.W018" in result.stderr  # DEBUG on
