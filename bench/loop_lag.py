"""Run a command's Python program with an event-loop lag monitor in every asyncio loop it creates.

    python bench/loop_lag.py OUT_FILE manage.py runrelay ...

Every loop gets a task that sleeps 2 ms at a time and records how late it wakes up: the time the loop was kept
from running anything else. Each 50 ms the worst lateness of that span is appended to OUT_FILE as
"<unix time> <lag ms>", so a benchmark can read the worst lag over the seconds it cares about.
"""

import asyncio
import runpy
import sys
import time

TICK, SPAN = 0.002, 0.05


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


def main() -> None:
    path, program, *args = sys.argv[1:]
    policy = asyncio.get_event_loop_policy()
    make_loop = policy.new_event_loop

    def new_event_loop():
        loop = make_loop()
        loop.call_soon(lambda: loop.create_task(monitor(path)))
        return loop

    policy.new_event_loop = new_event_loop
    sys.argv = [program, *args]
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main()
