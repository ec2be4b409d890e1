"""`runrelay --processes N`: N single-process relays sharing the ports with SO_REUSEPORT, kept running.

SIGTERM/SIGINT stop them all (each lets its sessions in DATA finish), SIGHUP is passed on (TLS reload), SIGUSR2
restarts them one at a time, each replacement listening before its predecessor stops, so a restart never
leaves the ports unserved. (Connections still waiting in a stopping process's accept queue are reset by Linux
unless net.ipv4.tcp_migrate_req=1 moves them to the others: set it on relay hosts.)
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from hostingmail.parentwatch import watch_parent

READY_ENV = "HM_RELAY_READY_FILE"  # a child creates this file once it listens
SUPERVISOR_ENV = "HM_RELAY_SUPERVISOR_PID"  # the pid a child watches: it stops when that process is gone


class SupervisorError(Exception):
    pass


def cores() -> int:
    """The CPUs this process may run on: its affinity (taskset, a container's cpuset), not all the machine's."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if count is not None:
        return count() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def stop_with_supervisor() -> None:
    """In a supervised relay: stop as SIGTERM stops it (sessions in DATA finish) once the supervisor is gone, even
    killed by SIGKILL, whose children would otherwise serve on as orphans, holding the ports. A supervisor that
    died while this child was still starting is noticed at once."""
    watch_parent(int(os.environ[SUPERVISOR_ENV]), lambda: os.kill(os.getpid(), signal.SIGTERM))


class Supervisor:
    def __init__(self, command: list[str], processes: int, *, write=print, start_timeout: float = 60.0):
        self.command, self.processes, self.write = command, processes, write
        self.start_timeout = start_timeout
        self.workdir = Path(tempfile.mkdtemp(prefix="relay-supervisor-"))
        self.env = dict(os.environ)
        if not self.env.get("PROMETHEUS_MULTIPROC_DIR"):
            # One /metrics for all: every process writes its counters where any of them can sum them.
            (self.workdir / "metrics").mkdir()
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(self.workdir / "metrics")
        self.children: list[subprocess.Popen] = []
        self.retiring: list[subprocess.Popen] = []
        self.started: dict[int, float] = {}
        self.stopping = False
        self.restart_requested = False
        self._count = 0

    def spawn(self) -> tuple[subprocess.Popen, Path]:
        self._count += 1
        ready = self.workdir / f"ready-{self._count}"
        child = subprocess.Popen(self.command, env={**self.env, READY_ENV: str(ready), SUPERVISOR_ENV: str(os.getpid())})
        self.started[child.pid] = time.monotonic()
        return child, ready

    def wait_ready(self, child: subprocess.Popen, ready: Path) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and not self.stopping:
            if ready.exists():
                return True
            if child.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def signal_all(self, signum: int) -> None:
        for child in self.children + self.retiring:
            if child.poll() is None:
                child.send_signal(signum)

    def on_signal(self, signum, _frame) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
            self.signal_all(signal.SIGTERM)
        elif signum == signal.SIGUSR2:
            self.restart_requested = True
        else:
            self.signal_all(signum)

    def rolling_restart(self) -> None:
        self.restart_requested = False
        for i, old in enumerate(list(self.children)):
            new, ready = self.spawn()
            if not self.wait_ready(new, ready):
                self.write(f"replacement relay process {new.pid} did not start; keeping {old.pid}")
                if new.poll() is None:
                    new.send_signal(signal.SIGTERM)
                self.retiring.append(new)
                return
            self.children[i] = new
            old.send_signal(signal.SIGTERM)  # it finishes the messages it is receiving, then exits
            self.retiring.append(old)
            self.write(f"relay process {old.pid} replaced by {new.pid}")

    def check_children(self) -> None:
        for i, child in enumerate(self.children):
            if child.poll() is None or self.stopping:
                continue
            if time.monotonic() - self.started.get(child.pid, 0) < 5:
                # Dying at once (port taken, bad certificate): restarting would only repeat it.
                self.stopping = True
                self.signal_all(signal.SIGTERM)
                raise SupervisorError(f"relay process {child.pid} exited with {child.returncode} at start")
            self.write(f"relay process {child.pid} exited with {child.returncode}; restarting it")
            self.children[i], _ = self.spawn()
        self.retiring = [child for child in self.retiring if child.poll() is None]

    def run(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2):
            signal.signal(signum, self.on_signal)
        self.children = [self.spawn()[0] for _ in range(self.processes)]
        self.write(f"supervising {self.processes} relay processes: {', '.join(str(c.pid) for c in self.children)}")
        try:
            while not self.stopping:
                if self.restart_requested:
                    self.rolling_restart()
                self.check_children()
                time.sleep(0.1)
        finally:
            for child in self.children + self.retiring:
                child.wait()
            shutil.rmtree(self.workdir, ignore_errors=True)
