"""CPU time spent by the processes of a benchmark: the server measured, the database server, the load itself.

On two shared cores a server's throughput is mostly a matter of how much CPU each message costs, so the
benchmarks print it beside the rates: milliseconds of CPU per message, per process group. Linux /proc only.
"""

import os
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Children of every thread of pid: a process started by a thread (a pool's worker) is that thread's child."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """pid and every process below it."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def named(name: str) -> list[int]:
    """Every process whose command name is `name` (e.g. "postgres": the server and all its backends)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (including their finished, waited-for children)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17
        total += sum(int(x) for x in fields[11:15])
    return total / _TICK


@dataclass
class Meter:
    """CPU seconds of named groups of processes between start() and stop()."""

    groups: dict  # label -> callable returning the pids of that group now

    def start(self) -> None:
        self._before = {label: {pid: seconds([pid]) for pid in find()} for label, find in self.groups.items()}

    def stop(self) -> dict[str, float]:
        """Seconds per group; a process started meanwhile counts whole, one that ended meanwhile is missed."""
        spent = {}
        for label, find in self.groups.items():
            before = self._before[label]
            spent[label] = sum(seconds([pid]) - before.get(pid, 0.0) for pid in find())
        return spent
