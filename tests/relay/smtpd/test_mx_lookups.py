"""The MX's recipient lookups shared by sessions asking for the same address at the same moment."""

import asyncio

from relay.inbound.rules import Accepted
from relay.smtpd.mx import MxHandler
from relay.submission.policy import Reject
from tests.support.loops import in_thread

ADDRESS = "info@alpha.test"


class HeldLookups:
    """A stand-in for the relay's database threads: each lookup asked for is recorded and answered when released,
    with a route whose mailbox has `free` octets left (None: no limit)."""

    def __init__(self, answer=None, free=None):
        self.asked, self.answer, self.free = [], answer, free
        self.release = asyncio.Event()

    async def gather(self, func, item):
        self.asked.append(item)
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return route(item, self.free)


def route(item, free=None):
    return Accepted(address=item[0], mailboxes=(), external=(ADDRESS, str(item[1])), free=free)


def run(scenario):
    return in_thread(lambda: asyncio.run(scenario()))


def test_sessions_asking_for_one_address_at_once_share_one_lookup():
    async def scenario():
        db = HeldLookups()
        handler = MxHandler(db)
        same = [asyncio.ensure_future(handler._look_up(ADDRESS, None, 7)) for _ in range(5)]
        # Another route generation looks up anew.
        other = asyncio.ensure_future(handler._look_up(ADDRESS, None, 8))
        await asyncio.sleep(0)
        db.release.set()
        results = await asyncio.gather(*same, other)
        later = await handler._look_up(ADDRESS, None, 7)  # the lookup is over: asked again
        return db.asked, results, later, handler.looking_up

    asked, results, later, pending = run(scenario)
    assert asked == [(ADDRESS, None), (ADDRESS, None), (ADDRESS, None)]
    assert results == [route((ADDRESS, None))] * 6
    assert later == route((ADDRESS, None)) and pending == {}


def test_sessions_declaring_other_sizes_share_a_lookup_when_their_message_fits():
    async def scenario():
        db = HeldLookups(free=10_000)
        handler = MxHandler(db)
        first = asyncio.ensure_future(handler._look_up(ADDRESS, 5000, 7))
        # A few octets more or less (another Message-ID), no SIZE at all: the route found for the first one.
        fitting = [asyncio.ensure_future(handler._look_up(ADDRESS, size, 7)) for size in (5003, 4998, None)]
        # More than the mailbox has room for: looked up with its own SIZE once the shared lookup has answered.
        too_large = asyncio.ensure_future(handler._look_up(ADDRESS, 20_000, 7))
        await asyncio.sleep(0)
        db.release.set()
        return db.asked, await asyncio.gather(first, *fitting, too_large)

    asked, results = run(scenario)
    assert asked == [(ADDRESS, 5000), (ADDRESS, 20_000)]
    assert results[:4] == [route((ADDRESS, 5000), 10_000)] * 4
    assert results[4] == route((ADDRESS, 20_000), 10_000)


def test_a_refusal_for_one_size_is_asked_again_for_another():
    async def scenario():
        db = HeldLookups(Reject("552 5.2.2 <info@alpha.test>: Mailbox full", "mailbox_full"))
        handler = MxHandler(db)
        large = asyncio.ensure_future(handler._look_up(ADDRESS, 50_000, 7))
        small = asyncio.ensure_future(handler._look_up(ADDRESS, 500, 7))
        await asyncio.sleep(0)
        db.release.set()
        return db.asked, await asyncio.gather(large, small, return_exceptions=True)

    asked, results = run(scenario)
    # The mailbox may have had room for the smaller message: the database says so for its own SIZE.
    assert asked == [(ADDRESS, 50_000), (ADDRESS, 500)]
    assert all(isinstance(r, Reject) for r in results)


def test_a_session_that_goes_away_does_not_end_the_lookup_of_the_others():
    async def scenario():
        db = HeldLookups()
        handler = MxHandler(db)
        first = asyncio.ensure_future(handler._look_up(ADDRESS, None, 7))
        second = asyncio.ensure_future(handler._look_up(ADDRESS, None, 7))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        db.release.set()
        return db.asked, await second, first.cancelled()

    asked, result, cancelled = run(scenario)
    assert asked == [(ADDRESS, None)] and result == route((ADDRESS, None)) and cancelled


def test_a_refusal_reaches_every_session_that_shared_the_lookup():
    async def scenario():
        db = HeldLookups(Reject("550 5.1.1 <info@alpha.test>: User unknown", "recipient"))
        handler = MxHandler(db)
        both = [asyncio.ensure_future(handler._look_up(ADDRESS, None, 7)) for _ in range(2)]
        await asyncio.sleep(0)
        db.release.set()
        return db.asked, await asyncio.gather(*both, return_exceptions=True)

    asked, results = run(scenario)
    assert asked == [(ADDRESS, None)]
    assert [r.reply for r in results] == ["550 5.1.1 <info@alpha.test>: User unknown"] * 2
