"""relay.loop_reads: reads on the event loop through libpq (PostgreSQL), here the relay's login generations."""

import asyncio

import pytest
from django.db import connection

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
