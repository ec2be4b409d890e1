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
from django.db import DatabaseError

from accounts.selectors.recipients import route_generation_sql
from relay.inbound.rules import route_generations
from relay import loop_reads


class GenerationReader:
    def __init__(self, db):
        self.db = db
        self.conn: psycopg.AsyncConnection | None = None
        self.on_loop = loop_reads.on_loop()
        self.sql = route_generation_sql().encode()
        self.running: asyncio.Task | None = None
        self.next: asyncio.Future | None = None

    async def read(self) -> int:
        return await asyncio.shield(self.reading())

    def reading(self) -> asyncio.Future:
        """The answer of a read that starts after this call, as a future shared with whoever else asks meanwhile: await
        it through asyncio.shield (a session that goes away must not cancel the others' answer). No task of its own
        for each transaction (an MX transaction asks at MAIL and awaits at its first RCPT)."""
        if not self.on_loop:
            return asyncio.ensure_future(self.db.gather(route_generations, None))
        answer = self.next
        if answer is None:
            answer = self.next = asyncio.get_running_loop().create_future()
            if self.running is None:
                self._start()
        return answer

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
                self.conn = await loop_reads.connect()
            rows = await loop_reads.ask(self.conn.pgconn, self.sql)
            return int(rows[0][0]) if rows else 0
        except psycopg.Error as error:
            await self.close()
            raise DatabaseError(f"reading the route generation: {error}") from error

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        await loop_reads.close_quietly(conn)
