"""The MX's recipient lookups shared by sessions asking for the same address at the same moment."""

import asyncio

from relay.smtpd.mx import MxHandler
from relay.submission.policy import Reject

ADDRESS = "info@alpha.test"


class HeldLookups:
    """A stand-in for the relay's database threads: each lookup asked for is recorded and answered when released."""

    def __init__(self, answer=None):
        self.asked, self.answer = [], answer
        self.release = asyncio.Event()

    async def gather(self, func, item):
        self.asked.append(item)
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return ("route of", item)


def run(scenario):
    return asyncio.run(scenario())


def test_sessions_asking_for_one_address_at_once_share_one_lookup():
    async def scenario():
        db = HeldLookups()
        handler = MxHandler(db)
        same = [asyncio.ensure_future(handler._look_up(ADDRESS, None, 7)) for _ in range(5)]
        # Another declared SIZE (a mailbox may be too full for it) and another route generation look up anew.
        others = [asyncio.ensure_future(handler._look_up(ADDRESS, 5000, 7)),
                  asyncio.ensure_future(handler._look_up(ADDRESS, None, 8))]
        await asyncio.sleep(0)
        db.release.set()
        results = await asyncio.gather(*same, *others)
        later = await handler._look_up(ADDRESS, None, 7)  # the lookup is over: asked again
        return db.asked, results, later, handler.looking_up

    asked, results, later, pending = run(scenario)
    assert asked == [(ADDRESS, None), (ADDRESS, 5000), (ADDRESS, None), (ADDRESS, None)]
    assert results == [("route of", (ADDRESS, None))] * 5 + [("route of", (ADDRESS, 5000)), ("route of", (ADDRESS, None))]
    assert later == ("route of", (ADDRESS, None)) and pending == {}


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
    assert asked == [(ADDRESS, None)] and result == ("route of", (ADDRESS, None)) and cancelled


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
