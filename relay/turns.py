"""A time budget for each turn of the relay's event loop.

One turn runs every callback that was ready when it began. Fifty sessions whose clients act in lockstep (a burst
of connections all sending EHLO, then AUTH, at once) are fifty sessions' work in one turn: 10-15 ms in which no
other session is answered and no timer fires. Here each turn's start is recorded by the loop's selector, and a
session that is about to handle the next line of its client after the turn has used up its budget first lets
the loop go round once (its work moves to the next turn, after what was waiting). The others get their turn
first; the total work stays the same.
"""

import asyncio
import selectors
import time

# Seconds of one turn after which a session handling a new line waits for the next turn.
BUDGET = 0.002


class TimedSelector(selectors.DefaultSelector):
    """The platform's selector, noting when each turn of the loop begins (when select returns)."""

    turn_started = 0.0

    def select(self, timeout=None):
        ready = super().select(timeout)
        self.turn_started = time.monotonic()
        return ready


def new_event_loop() -> asyncio.AbstractEventLoop:
    selector = TimedSelector()
    loop = asyncio.SelectorEventLoop(selector)
    loop.turn_selector = selector
    return loop


async def fair_share() -> None:
    """Wait for the next turn if this one has run longer than its budget (a no-op on other loops)."""
    selector = getattr(asyncio.get_running_loop(), "turn_selector", None)
    if selector is not None and time.monotonic() - selector.turn_started > BUDGET:
        await asyncio.sleep(0)


class FairReader(asyncio.StreamReader):
    """A session's stream: a complete command line is handed over only within its turn's budget. (A message's
    content is one command's work, read in bulk by relay.stream.SessionReader, not line by line.)"""

    async def readuntil(self, separator=b"\n"):
        line = await super().readuntil(separator)
        await fair_share()
        return line
