"""A time budget for each turn of the relay's event loop.

One turn runs every callback that was ready when it began. Fifty sessions whose clients act in lockstep (a burst
of connections all sending EHLO, then AUTH, at once) are fifty sessions' work in one turn: 10-15 ms in which no
other session is answered and no timer fires. Here each turn's start is recorded by the loop's selector, and a
session that is about to handle the next line of its client after the turn has used up its budget first lets
the loop go round once (its work moves to the next turn, after what was waiting). The others get their turn
first; the total work stays the same.

The same budget holds for the sockets a turn finds ready: past it, a socket's reading (a TLS handshake step, a
client's data) is left for the next turn — the socket stays ready, the next select reports it again at once — so
that fifty clients negotiating TLS together no longer take one 10-20 ms turn. Each turn serves at least one.
"""

import asyncio
import selectors
import time
from asyncio import selector_events

# Seconds of one turn after which a session handling a new line waits for the next turn.
BUDGET = 0.002


class TimedSelector(selectors.DefaultSelector):
    """The platform's selector (level-triggered), noting when each turn of the loop begins (when select returns)."""

    turn_started = 0.0
    served = 0  # sockets served in this turn

    def select(self, timeout=None):
        ready = super().select(timeout)
        self.turn_started = time.monotonic()
        self.served = 0
        return ready


class FairLoop(asyncio.SelectorEventLoop):
    """A selector loop whose turns serve ready sockets within the turn budget, and whose socket transports are
    freed by reference counting as soon as their connection is over."""

    def __init__(self):
        self.turn_selector = TimedSelector()
        super().__init__(self.turn_selector)

    def _process_events(self, event_list):
        # asyncio's own, with each client socket's callback behind the budget.
        for key, mask in event_list:
            fileobj, (reader, writer) = key.fileobj, key.data
            if mask & selectors.EVENT_READ and reader is not None:
                if reader._cancelled:
                    self._remove_reader(fileobj)
                else:
                    self._schedule(reader)
            if mask & selectors.EVENT_WRITE and writer is not None:
                if writer._cancelled:
                    self._remove_writer(fileobj)
                else:
                    self._schedule(writer)

    def _schedule(self, handle: asyncio.Handle) -> None:
        if _of_a_client(handle):
            self._ready.append(asyncio.Handle(self._serve, (handle,), self, handle._context))
        else:
            # The loop's own connections (a database's answer, written from or read on the loop) wake many sessions
            # at once: served first, whatever the budget, or a batch's commit waited behind turns of clients' work
            # (0.4 ms in the database, 3.7 ms for the loop to take the answer: bench/README.md).
            self._ready.appendleft(handle)

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        return _SocketTransport(self, sock, protocol, waiter, extra, server)

    def _serve(self, handle: asyncio.Handle) -> None:
        selector = self.turn_selector
        if selector.served and time.monotonic() - selector.turn_started > BUDGET:
            return  # the socket is still ready: the next select reports it again
        selector.served += 1
        if not handle._cancelled:
            handle._callback(*handle._args)


class _SocketTransport(selector_events._SelectorSocketTransport):
    """asyncio's socket transport, freed as soon as its connection is over.

    It keeps its own bound read method (a reference cycle that asyncio never breaks): every closed connection
    was garbage for the cycle collector, whose full collections stop the event loop."""

    def _call_connection_lost(self, exc):
        try:
            super()._call_connection_lost(exc)
        finally:
            self._read_ready_cb = None


def _of_a_client(handle: asyncio.Handle) -> bool:
    """A client's socket (a transport's reading or writing) or a listening one (a new client's accept)?"""
    owner = getattr(handle._callback, "__self__", None)
    return isinstance(owner, (selector_events._SelectorTransport, asyncio.AbstractEventLoop))


def new_event_loop() -> asyncio.AbstractEventLoop:
    return FairLoop()


# Turns a session waits at most for one with budget left: under overload it goes on regardless, never starved.
MAX_WAITS = 8


async def fair_share() -> None:
    """Wait for a turn that has budget left (a no-op on other loops).

    Checked again in each turn waited: fifty sessions put off together must not all run in the next turn."""
    selector = getattr(asyncio.get_running_loop(), "turn_selector", None)
    if selector is None:
        return
    for _ in range(MAX_WAITS):
        if time.monotonic() - selector.turn_started <= BUDGET:
            return
        await asyncio.sleep(0)


class FairReader(asyncio.StreamReader):
    """A session's stream: a complete command line is handed over only within its turn's budget. (A message's
    content is one command's work, read in bulk by relay.smtpd.stream.SessionReader, not line by line.)"""

    async def readuntil(self, separator=b"\n"):
        line = await super().readuntil(separator)
        await fair_share()
        return line
