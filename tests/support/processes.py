"""Processes as Linux shows them in /proc: a process's descendants, and the processes of this test run."""

import os
import select
import signal
import subprocess
from pathlib import Path

# Set by tests/conftest.py for the whole run; every process the suite starts inherits it.
RUN_MARKER = "HM_TEST_RUN"


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the command name may hold spaces and parentheses


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait() is missing


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for other in all_pids():
        parent = parent_of(other)
        if parent is not None:
            children.setdefault(parent, []).append(other)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def marked(value: str) -> list[int]:
    """Live processes (other than this one) whose environment holds RUN_MARKER=value."""
    needle = f"{RUN_MARKER}={value}".encode() + b"\0"
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ + b"\0" and alive(pid):
            found.append(pid)
    return found


def _leader_ended(pid: int, timeout: float) -> bool:
    """Waits up to `timeout` seconds for the child `pid` to exit, without reaping it: a pidfd turns readable when its
    process exits, and while the process is unreaped its id cannot be given to another process, nor its process
    group's."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:  # reaped elsewhere
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def stop_group(proc: subprocess.Popen, *, timeout: float = 15.0) -> None:
    """Stops the process group `proc` leads (started with start_new_session): SIGTERM, SIGKILL after `timeout`
    seconds, then SIGKILL to whatever of the group outlived its leader, and only then the leader reaped. The group is
    signalled only while its leader is unreaped: a process group id whose leader was reaped may already be another
    process's (pids wrap at /proc/sys/kernel/pid_max, 32768 on Debian), and killpg would stop a stranger."""
    if proc.returncode is not None:  # reaped before: its id is no longer ours to signal
        return
    signal_group(proc.pid, signal.SIGTERM)
    if not _leader_ended(proc.pid, timeout):
        signal_group(proc.pid, signal.SIGKILL)
        _leader_ended(proc.pid, 10)
    signal_group(proc.pid, signal.SIGKILL)
    proc.wait(10)
