"""Run a command's Python program with an event-loop lag monitor in every asyncio loop it creates.

    python bench/loop_lag.py OUT_FILE manage.py runrelay ...

Every loop gets a task that sleeps 2 ms at a time and records how late it wakes up: the time the loop was kept
from running anything else. Each 50 ms the worst lateness of that span is appended to OUT_FILE as
"<unix time> <lag ms>", so a benchmark can read the worst lag over the seconds it cares about.

With BENCH_SLOW_CALLBACKS=FILE set, every callback of a loop that runs longer than 3 ms is written to FILE as
"<unix time> <wall ms> cpu <thread CPU ms> <callback>": wall time well above CPU time means the loop's thread
was waiting (for the GIL, or for a CPU), not working.
"""

import asyncio
import asyncio.base_events
import asyncio.events
import os
import runpy
import sys
import time

TICK, SPAN = 0.002, 0.05
SLOW = 0.003


async def monitor(path: str) -> None:
    loop = asyncio.get_running_loop()
    worst, span_end = 0.0, loop.time() + SPAN
    with open(path, "a", buffering=1) as out:
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            worst = max(worst, loop.time() - before - TICK)
            if loop.time() >= span_end:
                out.write(f"{time.time():.3f} {worst * 1000:.2f}\n")
                worst, span_end = 0.0, loop.time() + SPAN


def trace_slow_callbacks(path: str) -> None:
    run = asyncio.events.Handle._run
    out = open(path, "a", buffering=1)

    def timed_run(handle):
        started, cpu = time.perf_counter(), time.thread_time()
        run(handle)
        took = time.perf_counter() - started
        if took > SLOW:
            out.write(f"{time.time():.3f} {took * 1000:.1f} cpu {(time.thread_time() - cpu) * 1000:.1f} "
                      f"{handle._callback!r:.200}\n")

    asyncio.events.Handle._run = timed_run


def main() -> None:
    path, program, *args = sys.argv[1:]
    init = asyncio.base_events.BaseEventLoop.__init__

    def init_with_monitor(loop, *a, **kw):  # every loop, whoever makes it (a policy, a Runner's loop_factory)
        init(loop, *a, **kw)
        loop.call_soon(lambda: loop.create_task(monitor(path)))

    asyncio.base_events.BaseEventLoop.__init__ = init_with_monitor
    if os.environ.get("BENCH_SLOW_CALLBACKS"):
        trace_slow_callbacks(os.environ["BENCH_SLOW_CALLBACKS"])
    sys.argv = [program, *args]
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main()
