"""Real Celery worker and beat processes for delivery tests, on the test's database and a broker of its choice."""

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.processes import signal_group, stop_group
from tests.support.relays import ROOT, child_env


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"


def require_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not reachable at {url} ({error}); install and start redis-server")


def broker_env(broker_url: str, tmp_path: Path, **extra) -> dict[str, str]:
    """Environment for every process of one test: its database, broker, task queue and delivery settings."""
    env = {"DJANGO_SETTINGS_MODULE": "tests.support.worker_settings", "HM_BROKER_URL": broker_url,
           "HM_TASK_QUEUE": f"hm-test-{uuid.uuid4().hex[:10]}", "DELIVERY_PORT": str(settings.DELIVERY_PORT),
           "DNS_NAMESERVERS": ",".join(settings.DNS_NAMESERVERS), "DNS_PORT": str(settings.DNS_PORT),
           "DNS_TIMEOUT": str(settings.DNS_TIMEOUT), "LOG_LEVEL": "INFO"}
    if broker_url == "filesystem://":
        folder = tmp_path / "broker"
        folder.mkdir(exist_ok=True)
        env["HM_BROKER_DIR"] = str(folder)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class CeleryProcess:
    proc: subprocess.Popen
    log_path: Path
    group: bool = False  # leads a process group of its own: killed as a group

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.group and self.proc.returncode is None:  # a group only while its leader is unreaped (stop_group)
            signal_group(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_processes(tmp_path):
    """start(kind, env, *args) -> CeleryProcess for `celery -A hostingmail worker|beat`; all stopped afterwards."""
    started: list[CeleryProcess] = []

    def start(kind: str, env: dict, *args: str, new_session: bool = False) -> CeleryProcess:
        """new_session: the process leads a process group of its own, so a signal can reach the whole group (as
        systemd's stop, or Ctrl-C in a terminal, does)."""
        log_path = tmp_path / f"{kind}-{len(started)}.log"
        command = [sys.executable, "-m", "celery", "-A", "hostingmail", kind, "--loglevel=INFO", *args]
        if kind == "worker":
            command += ["-Q", env["HM_TASK_QUEUE"], "-n", f"w{len(started)}-{uuid.uuid4().hex[:6]}@%h",
                        "--without-heartbeat", "--without-gossip", "--without-mingle"]
        if kind == "beat" or "--beat" in args:
            command += ["-s", str(tmp_path / f"beat-{len(started)}"), "--pidfile="]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=child_env(**env), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=new_session)
        process = CeleryProcess(proc=proc, log_path=log_path, group=new_session)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.group:
            stop_group(process.proc, timeout=20)  # and whatever of its group outlived it
        else:
            process.stop()


def wait_until(predicate, *, timeout: float, what: str, processes=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    logs = "\n".join(p.log()[-3000:] for p in processes)
    raise AssertionError(f"{what}: not within {timeout} s\n{logs}")
