"""The event loop's turn budget (relay.smtpd.fairloop): a session's next line waits for the next turn once a turn ran long."""

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from relay.smtpd import fairloop
from tests.support.loops import in_thread, run, until_async


def first_served(line: bytes, *, turn_age: float) -> list:
    """Who is served first, in a turn that began `turn_age` seconds ago: this session's complete `line` or
    another session's callback that was ready before it."""
    async def main():
        loop, order = asyncio.get_running_loop(), []
        reader = fairloop.FairReader()
        reader.feed_data(line)
        loop.turn_selector.turn_started = time.monotonic() - turn_age
        loop.call_soon(order.append, "other session")
        order.append(await reader.readuntil())
        await asyncio.sleep(0)
        return order

    return run(main)


def test_a_line_within_the_budget_is_handed_over_at_once():
    assert first_served(b"EHLO client\r\n", turn_age=0) == [b"EHLO client\r\n", "other session"]


def test_a_line_after_the_budget_waits_for_what_was_ready_first():
    assert first_served(b"AUTH PLAIN AGFAYg==\r\n", turn_age=10 * fairloop.BUDGET) == [
        "other session", b"AUTH PLAIN AGFAYg==\r\n"]


def test_the_selector_notes_when_each_turn_begins():
    async def main():
        selector = asyncio.get_running_loop().turn_selector
        before = selector.turn_started
        await asyncio.sleep(0.01)  # the loop waits in select, then starts a new turn
        return before, selector.turn_started

    before, after = run(main)
    assert after > before and time.monotonic() - after < 5


def test_other_loops_are_left_alone():
    async def main():
        reader = fairloop.FairReader()
        reader.feed_data(b"NOOP\r\n")
        return await reader.readuntil()

    assert in_thread(lambda: asyncio.run(main())) == b"NOOP\r\n"


def test_the_relay_reads_its_sessions_through_the_budget(relay):
    """Sessions of the running relay read through FairReader, on a loop whose selector notes its turns."""
    import smtplib

    seen = []
    original = fairloop.FairReader.readuntil

    async def spy(self, separator=b"\n"):
        seen.append(isinstance(getattr(asyncio.get_running_loop(), "turn_selector", None), fairloop.TimedSelector))
        return await original(self, separator)

    fairloop.FairReader.readuntil = spy
    try:
        with smtplib.SMTP("127.0.0.1", relay.submission, timeout=10) as client:
            assert client.noop()[0] == 250
    finally:
        fairloop.FairReader.readuntil = original
    assert seen and all(seen)


def turns_of_ready_sockets(work_seconds: float, *, database: bool = False) -> list:
    """Three client sockets made ready before the loop looks at them, each reader working `work_seconds`: the turn
    (its start) in which each was served, and what it read. `database`: the third is not a client's but one the
    loop watches for itself (a database connection's answer)."""
    async def main():
        loop, served, done = asyncio.get_running_loop(), [], asyncio.Event()
        pairs = [socket.socketpair() for _ in range(3)]

        def serve(data):
            served.append((loop.turn_selector.turn_started, data))
            time.sleep(work_seconds)  # the session's work: blocking the loop is the point here
            if len(served) == len(pairs):
                done.set()

        class Client(asyncio.Protocol):
            def data_received(self, data):
                serve(data)

        def database_answer(sock):
            loop.remove_reader(sock)
            serve(sock.recv(100))

        try:
            for ours, _ in pairs[:2] if database else pairs:
                await loop.connect_accepted_socket(Client, ours)
            if database:
                loop.add_reader(pairs[2][0], database_answer, pairs[2][0])
            for number, (_, theirs) in enumerate(pairs):  # all three are ready at the next select
                theirs.send(b"data %d" % number)
            await asyncio.wait_for(done.wait(), 10)
        finally:
            for pair in pairs:
                for sock in pair:
                    sock.close()
        return served

    return run(main)


def test_sockets_found_ready_past_the_budget_wait_for_the_next_turn():
    served = turns_of_ready_sockets(work_seconds=2 * fairloop.BUDGET)
    assert sorted(data for _, data in served) == [b"data 0", b"data 1", b"data 2"]  # nothing lost
    assert len({turn for turn, _ in served}) == 3  # each in a turn of its own


def test_sockets_within_the_budget_are_served_in_the_same_turn(monkeypatch):
    monkeypatch.setattr(fairloop, "BUDGET", 60.0)  # a stall of this machine must not end the turn's budget
    served = turns_of_ready_sockets(work_seconds=0)
    assert sorted(data for _, data in served) == [b"data 0", b"data 1", b"data 2"]
    assert len({turn for turn, _ in served}) == 1


def test_a_session_put_off_checks_the_budget_again_in_each_turn_but_is_never_starved(monkeypatch):
    """Fifty sessions put off together do not all run in the next turn: each checks again. Under overload (every
    turn past its budget) each still goes on after fairloop.MAX_WAITS turns."""
    monkeypatch.setattr(fairloop, "BUDGET", -1.0)

    async def main():
        loop, seen = asyncio.get_running_loop(), set()

        async def count_turns():
            while True:
                seen.add(loop.turn_selector.turn_started)
                await asyncio.sleep(0)

        counter = asyncio.create_task(count_turns())
        await fairloop.fair_share()
        counter.cancel()
        return len(seen)

    assert run(main) == fairloop.MAX_WAITS  # the turns after the one it began in, each checked


def test_sessions_woken_by_one_batch_go_on_within_the_turn_budget():
    """A batch (fifty AUTHs looked up in one query) wakes all its sessions at once: each goes on within a turn's
    budget, the others in the turns after, instead of all their work in one turn."""
    from relay.smtpd import threads as relay_db

    release = threading.Event()

    def lookup(items):
        release.wait(5)
        return items

    async def main():
        loop = asyncio.get_running_loop()
        runner = relay_db.DbRunner.__new__(relay_db.DbRunner)
        runner.lanes, runner._batches = [ThreadPoolExecutor(max_workers=1)], {}
        turns_seen = []

        async def session(item):
            await runner.batch(lookup, item)
            turns_seen.append(loop.turn_selector.turn_started)
            time.sleep(2 * fairloop.BUDGET)  # what a session does with its result

        first = asyncio.ensure_future(session("first"))  # the lane is busy with it while the others arrive
        await until_async(lambda: runner._batches and runner._batches[(0, lookup)].running, "the first lookup")
        others = [asyncio.ensure_future(session(n)) for n in range(4)]
        await until_async(lambda: len(runner._batches[(0, lookup)].waiting) == 4, "four lookups waiting")
        release.set()
        await asyncio.gather(first, *others)
        runner.lanes[0].shutdown()
        return turns_seen

    seen = run(main)
    assert len(seen) == 5
    assert len(set(seen[1:])) == 4  # the four woken together: each in a turn of its own


def test_the_running_relay_takes_the_interpreter_lock_back_from_its_threads_within_the_switch_interval(relay):
    """Each send or select of the loop hands the lock to a busy database thread; the loop gets it back after at
    most relay.smtpd.server.SWITCH_INTERVAL (Python's default is 5 ms, and a turn may wait that once per system call)."""
    import sys

    from relay.smtpd import server

    assert server.SWITCH_INTERVAL <= 0.0002
    assert sys.getswitchinterval() <= server.SWITCH_INTERVAL


def test_the_loops_own_connections_are_served_first_whatever_the_budget(monkeypatch):
    """A database's answer to the loop (a batch's commit, a shared read) wakes many sessions at once: served at the
    start of the turn that finds it ready, even with the budget spent, while the clients' sockets wait their turn."""
    monkeypatch.setattr(fairloop, "BUDGET", -1.0)  # every turn past its budget: one client socket a turn
    served = turns_of_ready_sockets(work_seconds=0, database=True)
    assert served[0][1] == b"data 2"  # the database's answer first
    clients = [turn for turn, data in served[1:]]
    assert served[0][0] == clients[0] and clients[0] != clients[1]  # in the first turn; the clients one a turn
