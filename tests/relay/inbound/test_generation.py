"""relay.inbound.generation: the MX's read of the route generation, on the event loop (PostgreSQL) or its
database threads (SQLite)."""

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from accounts.services.routes import routes_changed
from relay.inbound.generation import GenerationReader
from relay.smtpd.threads import DbRunner

pytestmark = pytest.mark.django_db(transaction=True)


def on_a_thread_of_its_own(test):
    """Runs the test's event loop on a thread of its own: the thread running the tests may already have a loop
    running (Playwright's synchronous API, in a worker that ran a browser test first)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(test, *args, **kwargs).result()

    return run


@on_a_thread_of_its_own
def test_a_read_sees_the_last_change_and_reads_asked_together_share_a_query(cast):
    db = DbRunner(2)
    reader = GenerationReader(db)
    queries = []
    query = reader._query

    async def counted():
        queries.append(1)
        return await query()

    reader._query = counted
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(reader.read())
        routes_changed()
        assert loop.run_until_complete(reader.read()) == first + 1
        queries.clear()
        together = loop.run_until_complete(_together(reader, 10))
        assert together == [first + 1] * 10
        if connection.vendor == "postgresql":  # on the loop: one read under way, the others share the next
            assert len(queries) <= 2
    finally:
        loop.run_until_complete(reader.close())
        loop.close()
        db.shutdown()


async def _together(reader, count):
    return await asyncio.gather(*(reader.read() for _ in range(count)))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the read on the event loop is PostgreSQL's")
@on_a_thread_of_its_own
def test_a_lost_connection_is_a_database_error_and_the_next_read_reconnects(cast):
    from django.db import DatabaseError

    db = DbRunner(2)
    reader = GenerationReader(db)
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(reader.read())
        with connection.cursor() as cursor:  # the server drops it (a restart, an administrator)
            cursor.execute("SELECT pg_terminate_backend(%s)", [reader.conn.info.backend_pid])
        with pytest.raises(DatabaseError):
            loop.run_until_complete(reader.read())
        assert loop.run_until_complete(reader.read()) == first
    finally:
        loop.run_until_complete(reader.close())
        loop.close()
        db.shutdown()


@on_a_thread_of_its_own
def test_a_session_that_goes_away_leaves_the_shared_read_to_the_others(cast):
    db = DbRunner(2)
    reader = GenerationReader(db)
    loop = asyncio.new_event_loop()

    async def scenario():
        first = reader.reading()  # starts a read at once; the next two wait for the one after it, together
        gone_read, kept_read = reader.reading(), reader.reading()
        if connection.vendor == "postgresql":
            assert gone_read is kept_read and gone_read is not first
        gone = asyncio.ensure_future(asyncio.shield(gone_read))
        kept = asyncio.ensure_future(asyncio.shield(kept_read))
        await asyncio.sleep(0)
        gone.cancel()
        return await kept, gone_read.cancelled() or first.cancelled()

    try:
        generation, cancelled = loop.run_until_complete(scenario())
        assert generation == loop.run_until_complete(reader.read()) and not cancelled
    finally:
        loop.run_until_complete(reader.close())
        loop.close()
        db.shutdown()
