"""Run a command's Python program with an event-loop lag monitor in every asyncio loop it creates.

    python bench/loop_lag.py OUT_FILE manage.py runrelay ...
    python bench/loop_lag.py OUT_FILE          # an empty event loop: the machine's own noise, for comparison

Every loop gets a task that sleeps 2 ms at a time and records how late it wakes up: the time the loop was kept
from running anything else. Each tick is appended to OUT_FILE as "<unix time it began> <lateness ms>" (by a
thread, every 0.2 s), so a benchmark can read the worst lag of the ticks that began in the seconds it cares about.

With BENCH_SLOW_CALLBACKS=FILE set, every callback of a loop that runs longer than 3 ms is written to FILE as
"<unix time> <wall ms> cpu <thread CPU ms> <callback>": wall time well above CPU time means the loop's thread
was waiting (for the GIL, or for a CPU), not working. The loop's turns go there too: a wait in the selector that
overran its timeout by more than 3 ms ("select"), and a turn whose callbacks together took longer ("turn"), with
the thread's CPU time and its involuntary context switches (the kernel gave its CPU to another task) meanwhile.
"""

import asyncio
import asyncio.base_events
import asyncio.events
import gc
import os
import runpy
import sys
import threading
import time

TICK = 0.002
SLOW = 0.003
FLUSH = 0.2


async def monitor(path: str) -> None:
    loop = asyncio.get_running_loop()
    ticks: list[str] = []
    threading.Thread(target=_flush, args=(path, ticks), name="loop-lag-writer", daemon=True).start()
    while True:
        before, wall = loop.time(), time.time()
        await asyncio.sleep(TICK)
        ticks.append(f"{wall:.4f} {(loop.time() - before - TICK) * 1000:.2f}\n")


def _flush(path: str, ticks: list[str]) -> None:
    """Write the loop's ticks from a thread of its own: a write that stalls in the kernel (seen: 40 ms) must not
    stall the loop being measured."""
    with open(path, "a") as out:
        while True:
            time.sleep(FLUSH)
            count = len(ticks)
            out.writelines(ticks[:count])
            del ticks[:count]  # list operations hold the GIL: the loop's appends are never lost
            out.flush()


# The callbacks of the turn under way: (wall seconds, what ran), for the "turn" lines.
_turn: list[tuple[float, str]] = []


def _inner(handle):
    """The socket's own callback behind relay.smtpd.fairloop.FairLoop's budget check."""
    if getattr(handle._callback, "__name__", "") == "_serve" and handle._args:
        return handle._args[0]
    return handle


def _name(handle) -> str:
    handle = _inner(handle)
    callback = handle._callback
    coro = getattr(getattr(callback, "__self__", None), "get_coro", lambda: None)()
    return getattr(coro, "__qualname__", None) or getattr(callback, "__qualname__", None) or type(callback).__name__


def trace_slow_callbacks(path: str) -> None:
    run = asyncio.events.Handle._run
    out = open(path, "a", buffering=1)

    def timed_run(handle):
        started, cpu = time.perf_counter(), time.thread_time()
        run(handle)
        took = time.perf_counter() - started
        _turn.append((took, _name(handle)))
        if took > SLOW:
            out.write(f"{time.time():.3f} {took * 1000:.1f} cpu {(time.thread_time() - cpu) * 1000:.1f} "
                      f"{_inner(handle)._callback!r:.200}\n")

    asyncio.events.Handle._run = timed_run


def _preempted() -> int:
    """Involuntary context switches of the calling thread so far (Linux; 0 elsewhere)."""
    try:
        with open("/proc/thread-self/status") as status:
            for line in status:
                if line.startswith("nonvoluntary_ctxt_switches"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def trace_turns(loop, path: str) -> None:
    selector, out = loop._selector, open(path, "a", buffering=1)
    select, state = selector.select, {"turn": None}

    def note(kind, wall, cpu, switches, extra=""):
        out.write(f"{time.time():.3f} {wall * 1000:.1f} cpu {cpu * 1000:.1f} {kind} preempted {switches}{extra}\n")

    def timed_select(timeout=None):
        turn = state["turn"]
        if turn is not None:  # the turn that ends here: every callback it ran
            took = time.perf_counter() - turn[0]
            if took > SLOW:
                spent: dict[str, list] = {}
                for wall, name in _turn:
                    entry = spent.setdefault(name, [0, 0.0])
                    entry[0], entry[1] = entry[0] + 1, entry[1] + wall
                top = sorted(spent.items(), key=lambda item: -item[1][1])[:4]
                note("turn", took, time.thread_time() - turn[1], _preempted() - turn[2],
                     f" callbacks {len(_turn)}: " + ", ".join(f"{n} x{c} {w * 1000:.1f}" for n, (c, w) in top))
        _turn.clear()
        started, cpu, switches = time.perf_counter(), time.thread_time(), _preempted()
        ready = select(timeout)
        took = time.perf_counter() - started
        if took - (timeout or 0) > SLOW:
            note("select", took, time.thread_time() - cpu, _preempted() - switches, f" timeout {(timeout or 0) * 1000:.1f}")
        state["turn"] = (time.perf_counter(), time.thread_time(), _preempted())
        return ready

    selector.select = timed_select


def trace_collections(path: str) -> None:
    """Garbage collections longer than 1 ms, with the generation and the thread that paid for them."""
    out, started = open(path, "a", buffering=1), {}

    def callback(phase, info):
        if phase == "start":
            started["at"] = time.perf_counter()
            return
        took = time.perf_counter() - started.pop("at", time.perf_counter())
        if took > 0.001:
            out.write(f"{time.time():.3f} {took * 1000:.1f} cpu - gc generation {info['generation']} collected "
                      f"{info['collected']} in {threading.current_thread().name}\n")

    gc.callbacks.append(callback)


def main() -> None:
    path, *command = sys.argv[1:]
    if not command:  # the empty loop: it runs nothing but the monitor, whose lateness is then the machine's alone
        asyncio.run(_with_monitor(path))
        return
    program, *args = command
    init = asyncio.base_events.BaseEventLoop.__init__

    def init_with_monitor(loop, *a, **kw):  # every loop, whoever makes it (a policy, a Runner's loop_factory)
        init(loop, *a, **kw)
        loop.call_soon(lambda: loop.create_task(monitor(path)))
        if os.environ.get("BENCH_SLOW_CALLBACKS"):  # the selector is set after BaseEventLoop.__init__
            loop.call_soon(lambda: trace_turns(loop, os.environ["BENCH_SLOW_CALLBACKS"]))

    asyncio.base_events.BaseEventLoop.__init__ = init_with_monitor
    if os.environ.get("BENCH_SLOW_CALLBACKS"):
        trace_slow_callbacks(os.environ["BENCH_SLOW_CALLBACKS"])
        trace_collections(os.environ["BENCH_SLOW_CALLBACKS"])
    sys.argv = [program, *args]
    runpy.run_path(program, run_name="__main__")


async def _with_monitor(path: str) -> None:
    asyncio.get_running_loop().create_task(monitor(path))
    await asyncio.Event().wait()


if __name__ == "__main__":
    main()
