"""The route generation (accounts.models.RouteGeneration) as the MX reads it: once per SMTP transaction, before the
first RCPT is answered from the recipients the process remembers.

On PostgreSQL the read runs on the event loop through psycopg's async connection (one small query, a socket
round trip; no hand-over to a database thread and back, which cost the transaction 6-15 ms of waiting on a busy
machine in bench/mx.py). Reads are shared: a session asking while a read is under way waits for the next one, which
starts when that one ends, so every answer was read after its session asked. Other databases (SQLite) read it on
the relay's database threads.
"""

import asyncio

import psycopg
from psycopg import pq
from django.db import DatabaseError, connection

from accounts.selectors.recipients import route_generation_sql
from relay.inbound.rules import route_generations

# What psycopg.connect takes from Django's connection parameters (the rest are Django's own adapters).
_CONNECT_KEYS = ("dbname", "user", "password", "host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey",
                 "options", "service", "passfile", "client_encoding")


class GenerationReader:
    def __init__(self, db):
        self.db = db
        self.conn: psycopg.AsyncConnection | None = None
        self.on_loop = connection.vendor == "postgresql"
        self.sql = route_generation_sql().encode()
        self.running: asyncio.Task | None = None
        self.next: asyncio.Future | None = None

    async def read(self) -> int:
        if not self.on_loop:
            return await self.db.gather(route_generations, None)
        answer = self.next
        if answer is None:
            answer = self.next = asyncio.get_running_loop().create_future()
            if self.running is None:
                self._start()
        return await asyncio.shield(answer)

    def _start(self) -> None:
        answer, self.next = self.next, None
        self.running = asyncio.ensure_future(self._query())
        self.running.add_done_callback(lambda done: self._finished(done, answer))

    def _finished(self, done: asyncio.Task, answer: asyncio.Future) -> None:
        self.running = None
        error = done.exception() if not done.cancelled() else DatabaseError("route generation read cancelled")
        if error is not None:
            answer.set_exception(error)
            answer.add_done_callback(lambda f: f.exception())  # nobody waiting any more: no warning
        else:
            answer.set_result(done.result())
        if self.next is not None:
            self._start()

    async def _query(self) -> int:
        try:
            if self.conn is None or self.conn.closed:
                params = connection.get_connection_params()
                self.conn = await psycopg.AsyncConnection.connect(
                    **{key: params[key] for key in _CONNECT_KEYS if params.get(key) is not None}, autocommit=True)
            return await _ask(self.conn.pgconn, self.sql)
        except psycopg.Error as error:
            await self.close()
            raise DatabaseError(f"reading the route generation: {error}") from error

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except psycopg.Error:
                pass


async def _ask(pgconn: pq.abc.PGconn, sql: bytes) -> int:
    """The query's one integer, through libpq itself (psycopg.pq) on this connection of the reader's own: a cursor's
    execute and fetch cost the event loop 160-210 us of interpreter time a read (the MX's 7 % in bench/mx.py), this
    a fraction of it. The connection is non-blocking (psycopg's async connection made it so)."""
    pgconn.send_query(sql)
    loop = asyncio.get_running_loop()
    while pgconn.flush():  # a query this small leaves at once; otherwise wait until the socket takes the rest
        await _ready(loop, pgconn.socket, loop.add_writer, loop.remove_writer)
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        await _ready(loop, pgconn.socket, loop.add_reader, loop.remove_reader)
    value, error = 0, None
    while (result := pgconn.get_result()) is not None:
        if result.status == pq.ExecStatus.TUPLES_OK:
            value = int(result.get_value(0, 0)) if result.ntuples else 0
        else:
            error = result.get_error_message()
    if error is not None:
        raise psycopg.DatabaseError(error)
    return value


async def _ready(loop, fd: int, add, remove) -> None:
    ready = loop.create_future()
    add(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        remove(fd)
