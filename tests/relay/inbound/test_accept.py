"""The MX's durable accept (relay.inbound.accept): a batch of messages stored with their recipients and automatic-reply
notes, all or nothing, committed before accept_inbound returns; on PostgreSQL in one statement (one round trip)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from accounts.selectors.recipients import Forwarder
from accounts.services.filters import auto_reply_save
from relay import loop_reads, sqlrows
from relay.inbound import accept
from relay.inbound.accept import InboundMessage, accept_inbound
from relay.inbound.rules import Accepted, Destination
from relay.models import AutoReplyDue, QueuedMessage, Recipient
from tests.support.loops import in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def to(tenant, *, external=()) -> Accepted:
    mailbox = tenant.mailbox
    return Accepted(mailbox.address, (Destination(mailbox.pk, mailbox.address, tenant.customer.pk),), tuple(external),
                    forwarding_domain_id=tenant.domain.pk if external else None,
                    forwarders=tuple(Forwarder(tenant.domain.pk) for _ in external))


def inbound(subject: str, *recipients: Accepted, mail_from="someone@sender.example") -> InboundMessage:
    return InboundMessage(mail_from=mail_from, recipients=list(recipients), client_ip="192.0.2.7",
                          helo="mta.sender.example", tls_version="TLSv1.3",
                          content=f"From: {mail_from}\r\nSubject: {subject}\r\n\r\nhi\r\n".encode())


def stored_rows(messages: list[QueuedMessage]) -> list[tuple]:
    rows = []
    for message in messages:
        fresh = QueuedMessage.objects.get(pk=message.pk)
        rows.append((fresh.queue_id, fresh.subject, fresh.customer_id, fresh.domain_id, bytes(fresh.content),
                     [(r.address, r.mailbox_id, r.forward_domain_id, r.state)
                      for r in Recipient.objects.filter(message=fresh).order_by("id")],
                     list(AutoReplyDue.objects.filter(message=fresh).order_by("id").values_list("auto_reply_id",
                                                                                               flat=True))))
    return rows


def batch(cast) -> list[InboundMessage]:
    return [inbound("first", to(cast.a), to(cast.b, external=["out@elsewhere.example"])),
            inbound("second", to(cast.b)),
            inbound("bounce", to(cast.a), mail_from="")]  # the null sender: never answered


def test_a_batch_is_stored_with_its_recipients_and_auto_reply_notes(cast):
    answering = auto_reply_save(actor=None, owner=cast.a.mailbox, enabled=True, subject="Away", body="Back soon.")
    auto_reply_save(actor=None, owner=cast.b.mailbox, enabled=False, subject="Away", body="Off.")
    stored = accept_inbound(batch(cast))
    [first, second, bounce] = stored_rows(stored)
    assert first[1:4] == ("first", cast.a.customer.pk, cast.b.domain.pk)
    assert first[5] == [(cast.a.mailbox.address, cast.a.mailbox.pk, None, "queued"),
                        (cast.b.mailbox.address, cast.b.mailbox.pk, None, "queued"),
                        ("out@elsewhere.example", None, cast.b.domain.pk, "queued")]
    assert first[4].startswith(b"Received: from mta.sender.example ([192.0.2.7])")
    assert first[4].endswith(b"Subject: first\r\n\r\nhi\r\n") and first[6] == [answering.pk]
    assert second[1:3] == ("second", cast.b.customer.pk) and second[6] == []  # b's reply is off
    assert second[5] == [(cast.b.mailbox.address, cast.b.mailbox.pk, None, "queued")]
    assert bounce[5] == [(cast.a.mailbox.address, cast.a.mailbox.pk, None, "queued")] and bounce[6] == []
    assert [m.queue_id for m in stored] == [row[0] for row in (first, second, bounce)]


def test_on_postgresql_a_batch_is_one_statement_and_nothing_else(cast, monkeypatch):
    auto_reply_save(actor=None, owner=cast.a.mailbox, enabled=True, subject="Away", body="Back soon.")
    statements = []
    execute = sqlrows.execute
    monkeypatch.setattr(sqlrows, "execute", lambda sql, params: statements.append(sql) or execute(sql, params))
    with CaptureQueriesContext(connection) as queries:
        stored = accept_inbound(batch(cast))
    if connection.vendor == "postgresql":
        # BEGIN, three INSERTs, the automatic replies' SELECT and COMMIT were six waits for the database.
        assert len(statements) == 1 and statements[0].startswith("WITH m AS (INSERT INTO") and not queries
    else:
        assert not statements  # SQLite: one transaction of separate statements
    assert len(stored_rows(stored)) == 3 and AutoReplyDue.objects.count() == 1


def test_a_batch_beyond_what_one_statement_takes_is_stored_in_one_transaction(cast, monkeypatch):
    auto_reply_save(actor=None, owner=cast.a.mailbox, enabled=True, subject="Away", body="Back soon.")
    monkeypatch.setattr(sqlrows, "ONE_STATEMENT_PARAMETERS", 10)
    statements = []
    monkeypatch.setattr(sqlrows, "execute", lambda sql, params: statements.append(sql))
    [first, second, bounce] = stored_rows(accept_inbound(batch(cast)))
    assert not statements and len(first[5]) == 3 and len(first[6]) == 1 and second[5] and bounce[5]


def test_the_batch_is_committed_when_accept_inbound_returns(cast, settings):
    """What the 250 promises: the rows are visible to another connection (PostgreSQL: the statement commits on its
    own, synchronous_commit on, so it was flushed to the log before the reply)."""
    stored = accept_inbound(batch(cast))
    if connection.vendor == "postgresql":
        params = connection.get_connection_params()
        with psycopg.connect(**{k: v for k, v in params.items() if k not in ("cursor_factory", "context")}) as other:
            count = other.execute(f"SELECT count(*) FROM {Recipient._meta.db_table} WHERE message_id = ANY(%s)",
                                  [[m.pk for m in stored]]).fetchone()[0]
            assert count == 5
            assert other.execute("SHOW synchronous_commit").fetchone()[0] == "on"
    else:
        assert Recipient.objects.filter(message__in=[m.pk for m in stored]).count() == 5


def test_a_batch_the_database_refuses_stores_none_of_its_messages(cast):
    broken = inbound("broken", Accepted("ghost@alpha.test", (Destination(10**9, "ghost@alpha.test",
                                                                         cast.a.customer.pk),), ()))
    with pytest.raises(DatabaseError):
        accept_inbound([inbound("fine", to(cast.a)), broken])  # the second's mailbox does not exist
    assert not QueuedMessage.objects.exists() and not Recipient.objects.exists()


# --- On PostgreSQL the MX writes from its event loop (relay.loop_reads.SharedWrites, MxHandler._write_on_loop) -------

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="the MX writes from its event loop on PostgreSQL only")


def mx_handler():
    from relay.smtpd.mx import MxHandler
    from relay.smtpd.threads import DbRunner

    return MxHandler(DbRunner(2))


async def close(handler) -> None:
    await handler.aclose()
    handler.db.shutdown()


@on_postgresql
def test_messages_arriving_together_share_one_statement(cast, monkeypatch):
    answering = auto_reply_save(actor=None, owner=cast.a.mailbox, enabled=True, subject="Away", body="Back soon.")
    statements, rows = [], loop_reads.rows

    async def counted(conn, sql, params):
        statements.append(sql)
        return await rows(conn, sql, params)

    monkeypatch.setattr(loop_reads, "rows", counted)

    async def main():
        handler = mx_handler()
        try:
            return await asyncio.gather(*(handler._store(message) for message in batch(cast)))
        finally:
            await close(handler)

    stored = in_thread(lambda: asyncio.run(main()))
    assert len(statements) == 1 and statements[0].startswith("WITH m AS (INSERT INTO")
    [first, second, bounce] = stored_rows(stored)
    assert first[1:4] == ("first", cast.a.customer.pk, cast.b.domain.pk)
    assert first[5] == [(cast.a.mailbox.address, cast.a.mailbox.pk, None, "queued"),
                        (cast.b.mailbox.address, cast.b.mailbox.pk, None, "queued"),
                        ("out@elsewhere.example", None, cast.b.domain.pk, "queued")]
    assert first[4].startswith(b"Received: from mta.sender.example ([192.0.2.7])") and first[6] == [answering.pk]
    assert second[5] == [(cast.b.mailbox.address, cast.b.mailbox.pk, None, "queued")] and second[6] == []
    assert bounce[6] == []  # the null sender is never answered


@on_postgresql
def test_the_workers_are_told_of_the_written_messages_but_not_of_quarantined_ones(cast, monkeypatch):
    from relay.inbound.spam import QUARANTINE, SpamVerdict

    told = []
    monkeypatch.setattr(accept.notifier, "submit", told.append)
    held = inbound("held", to(cast.a))
    held.spam = SpamVerdict(outcome=QUARANTINE, action="add header", score=9.0, symbols={})

    async def main():
        handler = mx_handler()
        try:
            return [await handler._store(inbound("plain", to(cast.a))), await handler._store(held)]
        finally:
            await close(handler)

    plain, quarantined = in_thread(lambda: asyncio.run(main()))
    assert told == [[plain.pk], []]
    assert QueuedMessage.objects.get(pk=quarantined.pk).state == QueuedMessage.State.QUARANTINED


@on_postgresql
def test_a_connection_the_server_dropped_while_idle_is_replaced_before_a_write(cast, monkeypatch):
    """A restarted database costs no refused message: a connection idle for a while is asked a trivial query first,
    and a new one opened when it does not answer."""
    monkeypatch.setattr(loop_reads, "ALIVE_WITHOUT_CHECK", 0.0)

    async def main():
        handler = mx_handler()
        try:
            first = await handler._store(inbound("first", to(cast.a)))
            before = handler.writer.conn.info.backend_pid
            with ThreadPoolExecutor(1) as other:  # Django's connection, from a thread (not from the event loop)
                other.submit(terminate, before).result()
            second = await handler._store(inbound("second", to(cast.a)))
            return first, second, before, handler.writer.conn.info.backend_pid
        finally:
            await close(handler)

    first, second, before, after = in_thread(lambda: asyncio.run(main()))
    assert after != before and len(stored_rows([first, second])) == 2


def terminate(backend_pid: int) -> None:
    from django.db import connections

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    connections.close_all()


@on_postgresql
def test_a_write_that_failed_on_its_way_is_not_sent_again_and_the_next_one_is_written(cast, monkeypatch):
    """A statement whose connection broke may have been committed: its sessions get an error (451, the client sends
    again) rather than a second copy; the writer opens a new connection for the next write."""
    rows, calls = loop_reads.rows, []

    async def breaks_once(conn, sql, params):
        calls.append(sql)
        if len(calls) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await rows(conn, sql, params)

    monkeypatch.setattr(loop_reads, "rows", breaks_once)

    async def main():
        handler = mx_handler()
        try:
            with pytest.raises(DatabaseError):
                await handler._store(inbound("lost", to(cast.a)))
            return await handler._store(inbound("kept", to(cast.a)))
        finally:
            await close(handler)

    kept = in_thread(lambda: asyncio.run(main()))
    assert len(calls) == 2 and list(QueuedMessage.objects.values_list("pk", flat=True)) == [kept.pk]


def stored_counting(messages: list[InboundMessage], method: str, count, configure=lambda handler: None) -> list:
    """The messages stored through an MX handler whose thread path db.<method> ("write": a batch on a write lane,
    "batch": a message into a lane's batch) calls count(its item) first."""
    async def main():
        handler = mx_handler()
        real = getattr(handler.db, method)

        async def counted(func, item, **kwargs):
            count(item)
            return await real(func, item, **kwargs)

        setattr(handler.db, method, counted)
        configure(handler)
        try:
            return await asyncio.gather(*(handler._store(message) for message in messages))
        finally:
            await close(handler)

    return in_thread(lambda: asyncio.run(main()))


@on_postgresql
def test_a_batch_beyond_one_statement_goes_to_a_write_lane_and_a_batch_holds_at_most_its_items(cast, monkeypatch):
    monkeypatch.setattr(sqlrows, "ONE_STATEMENT_PARAMETERS", 10)
    lane_writes = []
    stored = stored_counting(batch(cast) + batch(cast), "write", lambda items: lane_writes.append(len(items)),
                             configure=lambda handler: setattr(handler.writer, "items", 2))
    assert lane_writes == [2, 2, 2]  # each too large for one statement, each of two messages at most
    assert len(stored_rows(stored)) == 6 and Recipient.objects.count() == 10


@on_postgresql
def test_a_large_message_is_written_from_a_thread_not_the_event_loop(cast, monkeypatch):
    """Reading a large message's header fields and putting its bytes together would stop every session of the loop."""
    monkeypatch.setattr(loop_reads, "WRITE_ON_LOOP_BYTES", 10)
    on_lanes = []
    [stored] = stored_counting([inbound("large", to(cast.a))], "batch",
                               lambda message: on_lanes.append(message.recipients[0].address))
    assert on_lanes == [cast.a.mailbox.address] and stored_rows([stored])[0][1] == "large"


@on_postgresql
def test_a_session_gone_before_its_write_began_is_not_written_and_a_closed_writer_refuses(cast):
    async def main():
        handler = mx_handler()
        try:
            first = asyncio.ensure_future(handler._store(inbound("first", to(cast.a))))
            await asyncio.sleep(0)  # its write is under way
            gone = asyncio.ensure_future(handler._store(inbound("gone", to(cast.a))))
            kept = asyncio.ensure_future(handler._store(inbound("kept", to(cast.a))))
            await asyncio.sleep(0)
            gone.cancel()  # the client hung up while it waited
            written = [await first, await kept]
            await handler.writer.close()
            with pytest.raises(DatabaseError):
                await handler._store(inbound("late", to(cast.a)))
            return written
        finally:
            await close(handler)

    written = in_thread(lambda: asyncio.run(main()))
    assert sorted(QueuedMessage.objects.values_list("subject", flat=True)) == ["first", "kept"]
    assert [m.subject for m in written] == ["first", "kept"]


@on_postgresql
def test_the_writer_connects_with_the_libpq_settings_django_has(cast, monkeypatch):
    from django.db import connections

    wrapper = type(connections["default"])  # Django's DatabaseWrapper: the connections of every thread
    params = wrapper.get_connection_params
    monkeypatch.setattr(wrapper, "get_connection_params",
                        lambda self: {**params(self), "application_name": "hostingmail-mx-test"})

    async def main():
        conn = await loop_reads.connect(adapters=True)
        try:
            return (await (await conn.execute("SHOW application_name")).fetchone())[0]
        finally:
            await conn.close()

    assert in_thread(lambda: asyncio.run(main())) == "hostingmail-mx-test"
