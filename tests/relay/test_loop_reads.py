"""relay.loop_reads: reads on the event loop through libpq (PostgreSQL), here the relay's login generations."""

import asyncio

import pytest
from django.db import DatabaseError, connection

from accounts.models import Customer
from accounts.services.credentials import credential_create, credential_revoke
from relay import loop_reads
from relay.smtpd import threads
from relay.submission import auth
from tests.relay.inbound.test_generation import on_a_thread_of_its_own

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="the read on the event loop is PostgreSQL's")]


def generation_of(customer) -> int:
    return Customer.objects.get(pk=customer.pk).login_generation


def run(reader, coroutine_function):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine_function())
    finally:
        loop.run_until_complete(reader.close())
        loop.close()


@on_a_thread_of_its_own
def test_keys_asked_together_share_a_read_and_a_key_without_a_row_is_none(cast, monkeypatch):
    credential_revoke(actor=None, credential=credential_create(actor=None, domain=cast.a.domain).credential)
    reader = loop_reads.IntegersByKey(auth.generations_sql(), generation=threads.close_generation)
    reads, ask = [], loop_reads.ask

    async def counted(*args):
        reads.append(1)
        return await ask(*args)

    monkeypatch.setattr(loop_reads, "ask", counted)
    keys = [cast.a.customer.pk] * 5 + [cast.b.customer.pk, 2**40]

    async def together():
        return await asyncio.gather(*(reader.get(key) for key in keys))

    assert run(reader, together) == [generation_of(cast.a.customer)] * 5 + [generation_of(cast.b.customer), None]
    assert len(reads) <= 2  # one read under way, the others share the next


@on_a_thread_of_its_own
def test_a_lost_connection_costs_no_error_and_an_old_one_is_not_used_after_the_threads_closed_theirs(cast):
    reader = loop_reads.IntegersByKey(auth.generations_sql(), generation=threads.close_generation)
    customer = cast.a.customer.pk
    loop = asyncio.new_event_loop()
    db = threads.DbRunner(2)
    try:
        first = loop.run_until_complete(reader.get(customer))
        with connection.cursor() as cursor:  # the server drops it (a restart, an administrator)
            cursor.execute("SELECT pg_terminate_backend(%s)", [reader.conn.info.backend_pid])
        assert loop.run_until_complete(reader.get(customer)) == first  # read again on a new connection
        before = reader.conn.info.backend_pid
        db.close_connections()
        assert loop.run_until_complete(reader.get(customer)) == first
        assert reader.conn.info.backend_pid != before
    finally:
        loop.run_until_complete(reader.close())
        loop.close()
        db.shutdown()


def count_statements(monkeypatch) -> dict[str, int]:
    """How many statements were prepared and how many pipelines sent, by every PreparedRows."""
    counts = {"prepared": 0, "pipelines": 0}
    pipeline = loop_reads.PreparedRows._pipeline

    async def counted(self, pgconn, batch):
        counts["pipelines"] += 1
        before = len(self.prepared) if pgconn is self.prepared_on else 0
        try:
            return await pipeline(self, pgconn, batch)
        finally:
            counts["prepared"] += len(self.prepared) - before

    monkeypatch.setattr(loop_reads.PreparedRows, "_pipeline", counted)
    return counts


SQUARE = "SELECT $1::int * $1::int, $2::text WHERE $1::int >= 0"


@on_a_thread_of_its_own
def test_rows_asked_together_share_a_pipeline_and_a_statement_is_prepared_once_per_connection(cast, monkeypatch):
    counts = count_statements(monkeypatch)
    reader = loop_reads.PreparedRows(generation=threads.close_generation)

    async def together():
        first = await asyncio.gather(*(reader.row("square", SQUARE, [str(n).encode(), b"x"]) for n in (-1, 2, 3)),
                                     reader.row("other", "SELECT $1::text", [None]))
        return first, await reader.row("square", SQUARE, [b"4", b"y"])

    assert run(reader, together) == ([None, [b"4", b"x"], [b"9", b"x"], [None]], [b"16", b"y"])
    # The four asked together share one pipeline (or two: one read under way, the others in the next), the last its own.
    assert counts["prepared"] == 2 and counts["pipelines"] <= 3


@on_a_thread_of_its_own
def test_a_failed_statement_fails_the_rows_of_its_pipeline_and_the_next_read_is_answered(cast):
    reader = loop_reads.PreparedRows(generation=threads.close_generation)

    async def failing_then_not():
        bad = reader.row("square", SQUARE, [b"not a number", b"x"])
        good = reader.row("square", SQUARE, [b"2", b"x"])
        results = await asyncio.gather(bad, good, return_exceptions=True)
        assert [type(result) for result in results] == [DatabaseError, DatabaseError]
        with pytest.raises(DatabaseError):
            await reader.row("broken", "SELECT FROM nowhere_at_all", [])
        return await reader.row("square", SQUARE, [b"5", b"z"])

    assert run(reader, failing_then_not) == [b"25", b"z"]


@on_a_thread_of_its_own
def test_prepared_rows_prepare_again_on_a_new_connection(cast, monkeypatch):
    counts = count_statements(monkeypatch)
    reader = loop_reads.PreparedRows(generation=threads.close_generation)
    loop = asyncio.new_event_loop()
    db = threads.DbRunner(2)
    try:
        assert loop.run_until_complete(reader.row("square", SQUARE, [b"2", b"a"])) == [b"4", b"a"]
        with connection.cursor() as cursor:  # the server drops it (a restart, an administrator)
            cursor.execute("SELECT pg_terminate_backend(%s)", [reader.link.conn.info.backend_pid])
        assert loop.run_until_complete(reader.row("square", SQUARE, [b"3", b"b"])) == [b"9", b"b"]
        db.close_connections()  # and one opened before the threads closed theirs is not used again
        before = reader.link.conn.info.backend_pid
        assert loop.run_until_complete(reader.row("square", SQUARE, [b"4", b"c"])) == [b"16", b"c"]
        assert reader.link.conn.info.backend_pid != before
        assert counts["prepared"] == 3
    finally:
        loop.run_until_complete(reader.close())
        loop.close()
        db.shutdown()
