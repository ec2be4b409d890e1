"""A child process ends when the process that started it is gone, even killed by SIGKILL.

Not the kernel's parent-death signal (PR_SET_PDEATHSIG): it fires when the *thread* that started the child ends,
and a process pool starts workers from whichever thread submits. A thread here polls the parent id instead.

The parent's pid is handed down by the parent itself (not read with os.getppid() in the child): a child that
starts slowly, on a loaded machine, may already have been re-parented to init (or a subreaper) when it first
looks, and would then watch init forever.
"""

import os
import threading
import time
from collections.abc import Callable

INTERVAL = 0.5  # seconds between checks


def watch_parent(parent: int, on_gone: Callable[[], None], *, interval: float = INTERVAL) -> None:
    """Call on_gone() (from a daemon thread) as soon as this process's parent is no longer `parent`."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        on_gone()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
