"""A child process ends when the process that started it is gone, even killed by SIGKILL.

Not the kernel's parent-death signal (PR_SET_PDEATHSIG): it fires when the *thread* that started the child ends,
and a process pool starts workers from whichever thread submits. A thread here waits on a pidfd of the parent
(Linux 5.3+: readable once that process has exited), with no wake-up while it lives; where there is none, it
polls the parent id. (Polling twice a second cost each relay process, and each of its hashing workers, a wake-up
that took the interpreter lock from the event loop: part of what an idle process spent.)

The parent's pid is handed down by the parent itself (not read with os.getppid() in the child): a child that
starts slowly, on a loaded machine, may already have been re-parented to init (or a subreaper) when it first
looks, and would then watch init forever.
"""

import os
import select
import threading
import time
from collections.abc import Callable

INTERVAL = 0.5  # seconds between checks


def watch_parent(parent: int, on_gone: Callable[[], None], *, interval: float = INTERVAL) -> None:
    """Call on_gone() (from a daemon thread) as soon as this process's parent is no longer `parent`."""

    def watch() -> None:
        exited = _exit_notice(parent)
        if exited is not None:
            with exited:
                # Opened after the parent may have gone: a pid re-used since would not be our parent.
                if os.getppid() == parent:
                    select.select([exited], [], [])
        while os.getppid() == parent:  # no pidfd; or the parent exited and we are being re-parented
            time.sleep(interval)
        on_gone()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _exit_notice(pid: int):
    """A file readable once process `pid` has exited (a pidfd), or None where the system has none."""
    try:
        return open(os.pidfd_open(pid), "rb", buffering=0)
    except (AttributeError, OSError):  # not Linux 5.3+, or no such process any more
        return None
