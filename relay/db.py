"""Database work from the relay's event loop: in worker threads, never on the loop itself."""

import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections


class DbRunner:
    """Runs synchronous ORM (and hashing) functions on a pool of threads, each keeping its own connection."""

    def __init__(self, workers: int = 8):
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relay-db")

    async def __call__(self, func, /, *args, **kwargs):
        return await sync_to_async(_with_fresh_connection, thread_sensitive=False, executor=self.executor)(
            func, *args, **kwargs)

    def shutdown(self) -> None:
        self.close_connections()
        self.executor.shutdown(wait=True)

    def close_connections(self) -> None:
        """Close every worker thread's database connection (a connection belongs to the thread that opened it)."""
        # The pool starts threads lazily: only those it has started hold a connection.
        threads = len(self.executor._threads)
        if not threads:
            return
        barrier = threading.Barrier(threads, timeout=10)

        def close_here():
            connections.close_all()
            try:
                barrier.wait()  # holds this thread so each job lands on a different one
            except threading.BrokenBarrierError:
                pass

        for future in [self.executor.submit(close_here) for _ in range(threads)]:
            future.result()


def _with_fresh_connection(func, *args, **kwargs):
    # Drops connections past CONN_MAX_AGE or broken by a database restart before and after the work.
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()
