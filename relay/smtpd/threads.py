"""Blocking work from the relay's event loop: on worker threads, never on the loop itself.

Three pools: database reads; database writes, as single-thread lanes chosen by a key (the customer), so two
writes that would wait on the same rows' locks (sending quotas) queue here instead of inside the database, while
other customers' writes run beside them (one lane on SQLite, which has a single writer lock anyway); password
hashing, handed to worker processes at the lowest CPU priority (accounts.hashing.process_pool): as many in all
as the machine has cores, shared among the relay processes, so a cold-login storm uses every core while the event
loops (and so the sessions already authenticated) take the CPU from a hash whenever they need it. The hashes waiting
are bounded (RELAY_AUTH_HASH_QUEUE): beyond it an AUTH is refused at once with a temporary failure instead of
queueing behind minutes of work.

A lane also batches: `batch()` items that arrive while the lane is busy wait together and then go to one call of
the batch function (one transaction, one commit for all: group commit), so a lane's throughput grows with the
load instead of being one commit per message.
"""

import asyncio
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from accounts import hashing
from relay import loop_reads
from relay.smtpd import fairloop
from relay.smtpd.supervisor import cores

# A connection used this recently is taken as alive without the health check's round trip (as connection pools
# do); one idle for longer is checked first, so a restarted database costs no failed message.
ALIVE_WITHOUT_CHECK = loop_reads.ALIVE_WITHOUT_CHECK
BATCH_ITEMS, BATCH_BYTES = 100, 64 * 1024 * 1024


class HashQueueFull(Exception):
    """RELAY_AUTH_HASH_QUEUE slow hashes are already running or waiting in this process."""


WRITE_LANES = 2  # of a relay process with its four database threads (RelayConfig.db_workers), or of all together


def write_lanes_for(processes: int) -> int:
    """Write lanes for each of `processes` relay processes: WRITE_LANES shared among them (at least one each),
    unless RELAY_WRITE_LANES says how many."""
    return settings.RELAY_WRITE_LANES or max(1, WRITE_LANES // processes)


def hash_workers_for(processes: int) -> int:
    """Hashing worker processes for each of `processes` relay processes: the cores shared among them (rounded up,
    so that none is left idle), unless RELAY_HASH_WORKERS says how many."""
    return settings.RELAY_HASH_WORKERS or max(1, -(-cores() // processes))


class DbRunner:
    def __init__(self, workers: int = 8, hash_workers: int | None = None, hash_queue: int | None = None,
                 lanes: int | None = None):
        if connections["default"].vendor == "sqlite":
            # No server to wait for: more threads would only queue for the GIL, and delay the event loop.
            workers = min(workers, 2)
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relay-db")
        if connections["default"].vendor == "sqlite":
            lanes = 1
        else:
            lanes = lanes or settings.RELAY_WRITE_LANES or max(1, workers // 2)
        self.lanes = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"relay-db-write{i}",
                                         initializer=_writes_durable) for i in range(lanes)]
        # Every core: the workers run at SCHED_IDLE, so a hash gets only CPU that no event loop wants.
        self.hash_workers = hash_workers = hash_workers or hash_workers_for(1)
        self.hash_queue = hash_queue or settings.RELAY_AUTH_HASH_QUEUE
        self._hashes, self._hashes_lock = 0, threading.Lock()
        self.hash_processes = hashing.process_pool(hash_workers)
        self.hasher = ThreadPoolExecutor(max_workers=hash_workers, thread_name_prefix="relay-hash",
                                         initializer=hashing.use_pool, initargs=(self.hash_processes,))
        self._batches: dict[tuple[int, object], _Batcher] = {}

    async def __call__(self, func, /, *args, **kwargs):
        return await _run(self.executor, func, *args, **kwargs)

    async def write(self, func, /, *args, lane: int = 0, **kwargs):
        """A write on the lane of `lane` (e.g. the customer id): writes with the same key never run at once."""
        return await _run(self.lanes[lane % len(self.lanes)], func, *args, **kwargs)

    async def gather(self, func, item, /):
        """`func(items) -> results` on the read pool with whatever other items arrived meanwhile (one batch at a
        time per function): fifty AUTHs arriving at once are read by one thread in one go, not by every thread of
        the pool competing with the event loop for the interpreter lock."""
        # One turn of the loop first: when a burst of commands arrives, the loop parses them all before the thread
        # starts, instead of sharing the interpreter lock with it half-way through.
        await asyncio.sleep(0)
        return await self._batcher(None, self.executor, func).submit(item, 0)

    async def batch(self, func, item, /, *, lane: int = 0, size: int = 0):
        """`func(items) -> results` on the lane of `lane`, with whatever other items arrived meanwhile.

        A result that is an exception is raised to the caller of its item alone; an exception from the call
        itself goes to every item of the batch. `size` (bytes) bounds what one batch holds.
        """
        index = lane % len(self.lanes)
        return await self._batcher(index, self.lanes[index], func).submit(item, size)

    def _batcher(self, key, executor: ThreadPoolExecutor, func) -> "_Batcher":
        batcher = self._batches.get((key, func))
        if batcher is None:
            batcher = self._batches[(key, func)] = _Batcher(executor, func)
        return batcher

    async def hash(self, func, /, *args, **kwargs):
        """CPU work that touches no database (password hashing); HashQueueFull when `hash_queue` are already under
        way."""
        with self._hashes_lock:
            if self._hashes >= self.hash_queue:
                raise HashQueueFull
            self._hashes += 1
        job = self.hasher.submit(func, *args, **kwargs)
        # Counted until the job ends, not until its caller stops waiting: a client that hangs up leaves its hash
        # running (or, if it had not started, cancelled, which also ends it here).
        job.add_done_callback(self._hash_done)
        return await asyncio.wrap_future(job)

    async def start_hashing(self) -> None:
        """Start every hashing process now, not at the first slow hash. A process's start (the interpreter, its
        imports, its initializer) took 0.2 s of CPU and 0.2-1.3 s of wall time (bench/README.md): the first
        mailbox logins after a start waited for it, and a storm of 40 cold logins paid about a third of its hashing
        CPU for it."""
        # The pool starts a process for each job that finds none idle: one job a worker starts them all.
        jobs = [self.hash_processes.submit(os.getpid) for _ in range(self.hash_workers)]
        await asyncio.gather(*(asyncio.wrap_future(job) for job in jobs))

    def _hash_done(self, job) -> None:
        with self._hashes_lock:
            self._hashes -= 1

    def shutdown(self) -> None:
        self.close_connections()
        for executor in [self.executor, *self.lanes, self.hasher, self.hash_processes]:
            executor.shutdown(wait=True)

    def close_connections(self) -> None:
        """Close every database thread's connection (a connection belongs to the thread that opened it).

        Each thread the pools have started closes its own now; and any thread, before its next job, closes
        connections opened before this call — one the pool started while the closing jobs were handed out may
        have taken one of them, leaving an older thread's connection open."""
        global _generation
        _generation += 1
        for executor in [self.executor, *self.lanes]:
            _close_in_each_thread(executor)


_lane = threading.local()
# close_connections() calls so far, and (per thread) how many of them the thread's connections have seen.
_generation = 0
_closed_for = threading.local()


def close_generation() -> int:
    """How many times connections were closed (DbRunner.close_connections): a connection opened before the last
    is not to be used again (the event loop's own, relay.loop_reads, as the threads')."""
    return _generation


def loop_writer(write_batch) -> loop_reads.SharedWrites | None:
    """PostgreSQL: a writer from the event loop (relay.loop_reads.SharedWrites) whose batches hold what a write lane's
    do and whose connection is closed with the threads' (close_connections); None elsewhere (the lanes write)."""
    if not loop_reads.on_loop():
        return None
    return loop_reads.SharedWrites(write_batch, generation=close_generation, items=BATCH_ITEMS, size=BATCH_BYTES)


def _close_if_stale() -> None:
    if getattr(_closed_for, "generation", 0) != _generation:
        connections.close_all()
        _closed_for.generation = _generation


def _writes_durable() -> None:
    _lane.durable = True


@receiver(connection_created)
def _full_sync(sender, connection, **kwargs) -> None:
    """A lane's SQLite connection flushes each commit to disk before it returns (PRAGMA synchronous=FULL; the
    project's default, NORMAL, may lose the last commits in a power cut). The relay answers 250 after that commit,
    so what it accepted survives one. PostgreSQL's synchronous_commit is on unless its administrator said no."""
    if connection.vendor == "sqlite" and getattr(_lane, "durable", False):
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")


async def _run(executor: ThreadPoolExecutor, func, /, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(
        executor, partial(_with_fresh_connection, func, *args, **kwargs))


class _Batcher:
    """The items waiting for one lane's batch function; runs on the event loop's thread only (no locks)."""

    def __init__(self, executor: ThreadPoolExecutor, func):
        self.executor, self.func = executor, func
        self.waiting: list[tuple[object, int, asyncio.Future]] = []
        self.running = False

    async def submit(self, item, size: int):
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((item, size, future))
        if not self.running:
            self._next()
        result = await future
        # A batch wakes all its sessions in one turn of the loop (fifty AUTHs looked up at once): each goes on
        # within the turn's budget, the rest in the turns after, so that no timer or other client waits for all.
        await fairloop.fair_share()
        return result

    def _next(self) -> None:
        batch, self.waiting = loop_reads.take(self.waiting, BATCH_ITEMS, BATCH_BYTES)
        if not batch:
            return
        self.running = True
        # The thread hands the batch's answer straight to the loop (one wake-up), not through an asyncio future and a
        # task awaiting it (three more turns of the loop before the sessions hear of it, and before the next batch
        # starts: 2.7 ms on a busy loop in bench/mx.py).
        loop = asyncio.get_running_loop()
        try:
            job = self.executor.submit(_with_fresh_connection, self.func, [item for item, _, _ in batch])
        except RuntimeError as error:  # the pool is shut down (a stopping relay): every waiting session hears it
            self.running = False
            for _, _, future in batch + self.waiting:
                loop_reads.settle(future, error)
            self.waiting = []
            return
        job.add_done_callback(lambda finished: _call_soon(loop, self._finished, batch, finished))

    def _finished(self, batch, finished: Future) -> None:
        self.running = False
        error = finished.exception() if not finished.cancelled() else asyncio.CancelledError()
        results = [error] * len(batch) if error is not None else finished.result()
        for (_, _, future), result in zip(batch, results):
            loop_reads.settle(future, result)
        self._next()


def _call_soon(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _close_in_each_thread(executor: ThreadPoolExecutor) -> None:
    # The pool starts threads lazily: only those it has started hold a connection.
    threads = len(executor._threads)
    if not threads:
        return
    barrier = threading.Barrier(threads, timeout=10)

    def close_here():
        _close_if_stale()
        try:
            barrier.wait()  # holds this thread so each job lands on a different one
        except threading.BrokenBarrierError:
            pass

    for future in [executor.submit(close_here) for _ in range(threads)]:
        future.result()


def _with_fresh_connection(func, *args, **kwargs):
    _close_if_stale()
    _recycle_connections()
    try:
        return func(*args, **kwargs)
    finally:
        _recycle_connections()
        now = time.monotonic()
        for conn in connections.all(initialized_only=True):
            conn.relay_used_at = now


def _recycle_connections() -> None:
    """Close connections past CONN_MAX_AGE or broken (a database restart), like close_old_connections.

    An SQLite connection is kept open all the same: it is a file, not a server, and closing the last
    connection to a WAL database checkpoints it, which would cost a sync per message.
    """
    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and conn.connection is not None:
            conn.close_at = None
    close_old_connections()
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and now - getattr(conn, "relay_used_at", float("-inf")) < ALIVE_WITHOUT_CHECK:
            conn.health_check_done = True
