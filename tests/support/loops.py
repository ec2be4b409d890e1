"""Event loops for tests of the relay's loop machinery, each in a thread of its own."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from relay.smtpd import fairloop


def in_thread(function):
    """In a thread of its own, as the relay's loop runs: a test process may already run a loop in this thread
    (Playwright's sync API does)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(function).result(timeout=30)


def run(coroutine_function, *, fair: bool = True):
    """Run the coroutine on the relay's kind of loop (fairloop), or on asyncio's default one."""
    def target():
        with asyncio.Runner(loop_factory=fairloop.new_event_loop if fair else None) as runner:
            return runner.run(coroutine_function())

    return in_thread(target)


async def until_async(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)
