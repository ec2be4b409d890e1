"""relay.db.DbRunner.close_connections: no database thread goes on with a connection opened before the call, even
one the closing jobs missed (the pool started a new thread while they were handed out, and it took one)."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from relay.smtpd import threads as relay_db
from tests.support.loops import run


def raw_connection():
    """This thread's database connection as the driver made it (opened if need be), and the thread."""
    connection.ensure_connection()
    return threading.get_ident(), connection.connection


@pytest.mark.django_db(transaction=True)
def test_a_thread_the_closing_jobs_missed_closes_its_connection_before_its_next_job():
    runner = relay_db.DbRunner.__new__(relay_db.DbRunner)
    runner.executor, runner.lanes = ThreadPoolExecutor(max_workers=2), []
    held, release = threading.Event(), threading.Event()

    def hold():
        opened = raw_connection()
        held.set()
        release.wait(10)
        return opened

    async def on_both_threads():
        both = threading.Barrier(2, timeout=10)

        def one():
            both.wait()  # the two calls run on two different threads
            return raw_connection()

        return dict(await asyncio.gather(runner(one), runner(one)))

    async def scenario():
        busy = asyncio.ensure_future(runner(hold))
        await asyncio.get_running_loop().run_in_executor(None, held.wait, 10)
        # The pool has one thread, busy, with a connection: the closing job goes to a thread it starts for it.
        await asyncio.get_running_loop().run_in_executor(None, runner.close_connections)
        release.set()
        thread, before = await busy
        after = await on_both_threads()
        return thread, before, after

    try:
        thread, before, after = run(scenario, fair=False)
    finally:
        runner.close_connections()
        runner.executor.shutdown()
    assert len(after) == 2 and thread in after
    assert after[thread] is not before  # closed and opened again before the thread's next job


def test_a_batch_for_a_pool_already_shut_down_fails_its_sessions_instead_of_leaving_them_waiting():
    runner = relay_db.DbRunner.__new__(relay_db.DbRunner)
    runner.lanes, runner._batches = [ThreadPoolExecutor(max_workers=1)], {}
    runner.lanes[0].shutdown()  # a stopping relay

    async def main():
        results = await asyncio.gather(*(runner.batch(lambda items: items, n) for n in range(3)),
                                       return_exceptions=True)
        return results, runner._batches[(0, next(iter(runner._batches))[1])].running

    results, running = run(main)
    assert all(isinstance(result, RuntimeError) for result in results) and running is False
