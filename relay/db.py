"""Blocking work from the relay's event loop: on worker threads, never on the loop itself.

Three pools: database reads; database writes, as single-thread lanes chosen by a key (the customer), so two
writes that would wait on the same rows' locks (sending quotas) queue here instead of inside the database, while
other customers' writes run beside them (one lane on SQLite, which has a single writer lock anyway); password
hashing, with fewer threads than cores and at a lower CPU priority, so cold AUTHs never starve the event loop.
"""

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: per thread
    except (AttributeError, OSError):
        pass


class DbRunner:
    def __init__(self, workers: int = 8, hash_workers: int | None = None):
        if connections["default"].vendor == "sqlite":
            # No server to wait for: more threads would only queue for the GIL, and delay the event loop.
            workers = min(workers, 2)
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relay-db")
        lanes = 1 if connections["default"].vendor == "sqlite" else max(1, workers // 2)
        self.lanes = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"relay-db-write{i}") for i in range(lanes)]
        hash_workers = hash_workers or max(1, (os.cpu_count() or 2) - 1)
        self.hasher = ThreadPoolExecutor(max_workers=hash_workers, thread_name_prefix="relay-hash",
                                         initializer=_lower_priority)

    async def __call__(self, func, /, *args, **kwargs):
        return await sync_to_async(_with_fresh_connection, thread_sensitive=False, executor=self.executor)(
            func, *args, **kwargs)

    async def write(self, func, /, *args, lane: int = 0, **kwargs):
        """A write on the lane of `lane` (e.g. the customer id): writes with the same key never run at once."""
        executor = self.lanes[lane % len(self.lanes)]
        return await sync_to_async(_with_fresh_connection, thread_sensitive=False, executor=executor)(
            func, *args, **kwargs)

    async def hash(self, func, /, *args, **kwargs):
        """CPU work that touches no database (password hashing)."""
        return await asyncio.get_running_loop().run_in_executor(self.hasher, partial(func, *args, **kwargs))

    def shutdown(self) -> None:
        self.close_connections()
        for executor in [self.executor, *self.lanes, self.hasher]:
            executor.shutdown(wait=True)

    def close_connections(self) -> None:
        """Close every database thread's connection (a connection belongs to the thread that opened it)."""
        for executor in [self.executor, *self.lanes]:
            _close_in_each_thread(executor)


def _close_in_each_thread(executor: ThreadPoolExecutor) -> None:
    # The pool starts threads lazily: only those it has started hold a connection.
    threads = len(executor._threads)
    if not threads:
        return
    barrier = threading.Barrier(threads, timeout=10)

    def close_here():
        connections.close_all()
        try:
            barrier.wait()  # holds this thread so each job lands on a different one
        except threading.BrokenBarrierError:
            pass

    for future in [executor.submit(close_here) for _ in range(threads)]:
        future.result()


def _with_fresh_connection(func, *args, **kwargs):
    _recycle_connections()
    try:
        return func(*args, **kwargs)
    finally:
        _recycle_connections()


def _recycle_connections() -> None:
    """Close connections past CONN_MAX_AGE or broken (a database restart), like close_old_connections.

    An SQLite connection is kept open all the same: it is a file, not a server, and closing the last
    connection to a WAL database checkpoints it, which would cost a sync per message.
    """
    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and conn.connection is not None:
            conn.close_at = None
    close_old_connections()
