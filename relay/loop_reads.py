"""Reads answered on the event loop itself, through libpq on a psycopg async connection of the loop's own: no
database thread to wake and then wake the loop back. For one small query asked by many sessions (the MX's route
generation, the relay's login generations at MAIL); other databases (SQLite) read on the relay's threads instead.

A reader's reads are shared: keys asked while a read is under way go together in the next one, which starts when
that one ends, so every answer was read after its session asked.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

import psycopg
from django.db import DatabaseError, connection
from psycopg import pq

# Django's own keys among its connection parameters: everything else (libpq's, e.g. target_session_attrs,
# connect_timeout, keepalives, application_name) goes to psycopg.connect as Django's own connections get it.
_DJANGO_KEYS = ("cursor_factory", "context", "prepare_threshold", "pool", "server_side_binding", "assume_role",
                "isolation_level")


def on_loop() -> bool:
    return connection.vendor == "postgresql"


# What a message may weigh for its write to be prepared on the event loop (its header fields read, its bytes put
# together and handed to libpq): a larger one is written from a thread, as spooled content always is.
WRITE_ON_LOOP_BYTES = 64 * 1024

# A connection used this recently is taken as alive without a round trip to check it (as connection pools do); one
# idle for longer is checked before a write (relay.smtpd.threads does the same for its threads' connections).
ALIVE_WITHOUT_CHECK = 0.5


async def connect(*, adapters: bool = False) -> psycopg.AsyncConnection:
    """A connection in autocommit with Django's connection parameters; `adapters`: with Django's adapters too (the
    values a model field prepares for the database, e.g. a JSON field's, dumped as Django's own connection would)."""
    params = connection.get_connection_params()
    extra = {"context": params["context"]} if adapters and params.get("context") is not None else {}
    conn = await psycopg.AsyncConnection.connect(
        **{key: value for key, value in params.items() if key not in _DJANGO_KEYS and value is not None},
        autocommit=True, **extra)
    role = connection.settings_dict.get("OPTIONS", {}).get("assume_role")
    if role:  # as Django's own connections do
        await conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
    return conn


async def ask(pgconn: pq.abc.PGconn, sql: bytes, params: list[bytes] | None = None) -> list[list[bytes | None]]:
    """The query's rows (text values), through libpq itself (psycopg.pq) on a connection of the reader's own: a
    cursor's execute and fetch cost the event loop 160-210 us of interpreter time a read (the MX's 7 % in
    bench/mx.py), this a fraction of it. The connection is non-blocking (psycopg's async connection made it so)."""
    if params is None:
        pgconn.send_query(sql)
    else:
        pgconn.send_query_params(sql, params)
    loop = asyncio.get_running_loop()
    while pgconn.flush():  # a query this small leaves at once; otherwise wait until the socket takes the rest
        await _ready(loop, pgconn.socket, loop.add_writer, loop.remove_writer)
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        await _ready(loop, pgconn.socket, loop.add_reader, loop.remove_reader)
    rows, error = [], None
    while (result := pgconn.get_result()) is not None:
        if result.status == pq.ExecStatus.TUPLES_OK:
            rows = [[result.get_value(row, column) for column in range(result.nfields)]
                    for row in range(result.ntuples)]
        else:
            error = result.get_error_message()
    if error is not None:
        raise psycopg.DatabaseError(error)
    return rows


async def close_quietly(conn: psycopg.AsyncConnection | None) -> None:
    if conn is not None and not conn.closed:
        try:
            await conn.close()
        except psycopg.Error:
            pass


async def _ready(loop, fd: int, add, remove) -> None:
    ready = loop.create_future()
    add(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        remove(fd)


class _Link:
    """The reader's own connection: opened when first needed, replaced when lost (the read tried once more on a new
    one: a restarted database costs no refused command), and not used again once `generation()` has moved on (the
    relay's threads closed theirs: a moved or restarted database)."""

    def __init__(self, generation: Callable[[], int]):
        self.current_generation = generation
        self.conn: psycopg.AsyncConnection | None = None
        self.generation = -1  # current_generation() when the connection was opened
        self.used_at = float("-inf")  # when a write last used it

    async def read(self, reading: Callable[[pq.abc.PGconn], Awaitable]):
        for attempt in range(2):
            fresh = self.conn is None or self.conn.closed or self.generation != self.current_generation()
            try:
                if fresh:
                    await self.close()
                    self.generation = self.current_generation()
                    self.conn = await connect()
                return await reading(self.conn.pgconn)
            except psycopg.Error as error:
                await self.close()
                if fresh or attempt:
                    raise DatabaseError(f"reading on the event loop: {error}") from error
        raise AssertionError("unreachable")

    async def write(self, writing: Callable[[psycopg.AsyncConnection], Awaitable]):
        """`writing` once on the connection, never tried again: a statement whose connection broke on its way may
        have been committed. So the connection is made sure of first: a new one opened when there is none (or it
        belongs to an earlier generation), one idle for ALIVE_WITHOUT_CHECK asked a trivial query, and replaced if it
        does not answer (a restarted database costs no refused message)."""
        conn = self.conn
        if conn is not None and not conn.closed and self.generation == self.current_generation():
            if time.monotonic() - self.used_at > ALIVE_WITHOUT_CHECK:
                try:
                    await ask(conn.pgconn, b"SELECT 1")
                except psycopg.Error:
                    await self.close()
        else:
            await self.close()
        try:
            if self.conn is None:
                self.generation = self.current_generation()
                self.conn = await connect(adapters=True)
            return await writing(self.conn)
        except psycopg.Error as error:
            await self.close()
            raise DatabaseError(f"writing on the event loop: {error}") from error
        finally:
            self.used_at = time.monotonic()

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        await close_quietly(conn)


class _SharedReads:
    """Reads asked while one is under way go together in the next, which starts when that one ends, on the reader's
    own connection. A subclass keeps what is asked in `waiting` (`_empty()` when nothing is) and answers a batch of it
    in `_serve`."""

    def __init__(self, *, generation: Callable[[], int]):
        self.link = _Link(generation)
        self.waiting = self._empty()
        self.running = False
        self.task: asyncio.Future | None = None  # the reads (or writes) under way

    def _empty(self):
        raise NotImplementedError

    async def _serve(self, batch) -> None:
        raise NotImplementedError

    def _take(self):
        """The next batch, and what waits for the one after it: everything waiting, by default."""
        return self.waiting, self._empty()

    def _start(self) -> None:
        if not self.running:
            self.running = True
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self._take()
                await self._serve(batch)
        finally:
            self.running = False

    @property
    def conn(self) -> psycopg.AsyncConnection | None:
        return self.link.conn

    async def close(self) -> None:
        await self.link.close()


class IntegersByKey(_SharedReads):
    """`await reader.get(key)`: the integer `sql` gives for an integer key, None when it gives none. `sql` takes
    the array of keys as $1 and returns (key, value) rows (`SELECT id, n FROM t WHERE id = ANY($1::bigint[])`)."""

    def __init__(self, sql: str, *, generation: Callable[[], int]):
        self.sql = sql.encode()
        super().__init__(generation=generation)

    def _empty(self) -> dict[int, list[asyncio.Future]]:
        return {}

    async def get(self, key: int) -> int | None:
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(key, []).append(future)
        self._start()
        return await future

    async def _serve(self, batch: dict[int, list[asyncio.Future]]) -> None:
        try:
            found = await self._read(list(batch))
        except DatabaseError as error:
            found = error
        for key, futures in batch.items():
            for future in futures:
                settle(future, found if isinstance(found, BaseException) else found.get(key))

    async def _read(self, keys: list[int]) -> dict[int, int]:
        param = ("{" + ",".join(str(int(key)) for key in keys) + "}").encode()
        rows = await self.link.read(lambda pgconn: ask(pgconn, self.sql, [param]))
        return {int(key): int(value) for key, value in rows}


class SharedWrites(_SharedReads):
    """`await writer.write(item)`: items written while a write is under way go together in the next one, on the
    writer's own connection (autocommit: a statement is its own transaction, durable when its rows arrive).
    `write_batch(items, writer)` returns each item's result (a value, or an exception to raise to that item's
    writer alone), running its statements through `await writer.execute(sql, params)` (placeholders $1, $2, ...)
    -> rows, or a transaction through `await writer.run(work)` (work(conn), once); an exception it raises goes to
    every item of the batch."""

    def __init__(self, write_batch: Callable[[list, "SharedWrites"], Awaitable[list]], *,
                 generation: Callable[[], int], items: int, size: int):
        super().__init__(generation=generation)
        self.write_batch = write_batch
        self.items, self.size = items, size  # what one batch holds at most (the first item whatever its size)
        self.closed = False

    async def close(self, timeout: float = 10.0) -> None:
        """No write after this one: what is under way finishes first (its sessions hear how it went), what still
        waits is refused, and then the connection closes (not to be opened again)."""
        self.closed = True
        if self.task is not None and not self.task.done():
            await asyncio.wait([self.task], timeout=timeout)
        await super().close()

    def _empty(self) -> list[tuple[object, int, asyncio.Future]]:
        return []

    async def write(self, item, size: int = 0):
        """`item`'s result, once written; `size` (bytes) counts against what one batch holds."""
        if self.closed:
            raise DatabaseError("the writer on the event loop is closed (the server is stopping)")
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((item, size, future))
        self._start()
        return await future

    async def open(self) -> None:
        """Open the writer's connection now (before a server listens) rather than at the first write."""
        await self.link.write(_nothing)

    def _take(self):
        return take(self.waiting, self.items, self.size)

    async def _serve(self, batch: list) -> None:
        try:
            if self.closed:
                raise DatabaseError("the writer on the event loop is closed (the server is stopping)")
            results = await self.write_batch([item for item, _, _ in batch], self)
        except Exception as error:  # whatever went wrong reaches the sessions: none of them is left waiting
            results = [error] * len(batch)
        for (_, _, future), result in zip(batch, results):
            settle(future, result)

    async def execute(self, sql: str, params: list) -> list[tuple]:
        """One statement on the writer's connection (its own transaction): its rows."""
        return await self.link.write(lambda conn: rows(conn, sql, params))

    async def run(self, work: Callable[[psycopg.AsyncConnection], Awaitable]):
        """`work(conn)` once on the writer's connection (e.g. a transaction of several statements)."""
        return await self.link.write(work)


async def _nothing(conn: psycopg.AsyncConnection) -> None:
    return None


async def rows(conn: psycopg.AsyncConnection, sql: str, params: list) -> list[tuple]:
    # Values bound apart from the statement, unprepared (a batch's statement has the text of its shape: its number
    # of messages and recipients; one with the same text for every batch, its values in arrays, was prepared once
    # and cost the database as much CPU a message, and the loop more to dump the arrays).
    async with psycopg.AsyncRawCursor(conn) as cursor:
        await cursor.execute(sql, params, prepare=False)
        return await cursor.fetchall() if cursor.description else []


class PreparedRows(_SharedReads):
    """`await reader.row(name, sql, params)`: the first row of `sql` (placeholders $1, $2, ...; parameters and
    values as text), None when it gives none. Each statement is prepared once per connection under its name (the
    relay's AUTH lookup took the server 0.35 ms to plan and 0.07 ms to run); rows asked while a read is under way go
    together in the next one, in one pipeline: one round trip and one wake-up of the loop for all of them."""

    def __init__(self, *, generation: Callable[[], int]):
        super().__init__(generation=generation)
        self.prepared: set[bytes] = set()
        self.prepared_on: pq.abc.PGconn | None = None

    def _empty(self) -> list[tuple[bytes, bytes, list[bytes | None], asyncio.Future]]:
        return []

    async def row(self, name: str, sql: str, params: list[bytes | None]) -> list[bytes | None] | None:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((name.encode(), sql.encode(), params, future))
        self._start()
        return await future

    async def _serve(self, batch: list) -> None:
        try:
            rows = await self.link.read(lambda pgconn: self._pipeline(pgconn, batch))
        except DatabaseError as error:
            rows = [error] * len(batch)
        for (*_, future), row in zip(batch, rows):
            settle(future, row)

    async def _pipeline(self, pgconn: pq.abc.PGconn, batch: list) -> list:
        if pgconn is not self.prepared_on:  # a new connection knows no statement yet
            self.prepared, self.prepared_on = set(), pgconn
        sent = []  # in the order the results come back: a statement's name (prepared), else None (a row asked)
        pgconn.enter_pipeline_mode()
        try:
            for name, sql, params, _ in batch:
                if name not in self.prepared and name not in sent:
                    pgconn.send_prepare(name, sql)
                    sent.append(name)
                pgconn.send_query_prepared(name, params)
                sent.append(None)
            pgconn.pipeline_sync()
            loop = asyncio.get_running_loop()
            while pgconn.flush():
                await _ready(loop, pgconn.socket, loop.add_writer, loop.remove_writer)
            error, rows = None, []
            for name in sent:
                result = await _statement_result(loop, pgconn)
                if name is not None and result.status == pq.ExecStatus.COMMAND_OK:
                    self.prepared.add(name)
                elif name is None and result.status == pq.ExecStatus.TUPLES_OK:
                    rows.append([result.get_value(0, column) for column in range(result.nfields)]
                                if result.ntuples else None)
                else:
                    error = error or result.get_error_message() or "pipeline aborted"
                    if name is None:
                        rows.append(None)
            while (result := await _result(loop, pgconn)) is None or result.status != pq.ExecStatus.PIPELINE_SYNC:
                pass
        finally:
            if pgconn.pipeline_status:
                try:
                    pgconn.exit_pipeline_mode()
                except psycopg.Error:  # a lost connection: the reader replaces it
                    pass
        if error is not None:
            raise psycopg.DatabaseError(error)
        return rows


async def _statement_result(loop, pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
    """The result of a pipeline's next statement (then the end of that statement's results, read past)."""
    result = await _result(loop, pgconn)
    await _result(loop, pgconn)
    return result


async def _result(loop, pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            return pgconn.get_result()
        await _ready(loop, pgconn.socket, loop.add_reader, loop.remove_reader)


def take(waiting: list[tuple], items: int, size: int) -> tuple[list, list]:
    """The first of `waiting` ((item, size, future) each) that one batch holds: `items` at most, `size` bytes at most
    (the first whatever its size); and the rest. An item whose future is done already (its session went away, and
    its client will send the message again) is dropped: written, it would be a copy nobody was told of."""
    waiting = [entry for entry in waiting if not entry[2].done()]  # a session gone meanwhile: nothing to write
    count, total = 0, 0
    for _, bytes_, _ in waiting:
        if count and (count == items or total + bytes_ > size):
            break
        count, total = count + 1, total + bytes_
    return waiting[:count], waiting[count:]


def settle(future: asyncio.Future, result) -> None:
    """Give one session's future its part of a batch's answer: a value, or an exception to raise; nothing when the
    session went away meanwhile (its future cancelled)."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
