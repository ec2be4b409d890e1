"""AUTHs being verified right now, per client address, in this relay process.

The database counts failures only once they are recorded, after the hash: forty AUTHs sent at once from one
address were all hashed before the first failure counted (issue 17). The relay adds the AUTHs under way here to the
failures it read, and lets an AUTH go on to the hash only while the sum is below the address's limit; the others
wait for one under way to finish, then read the limits again (by then a lockout, or room).
"""

import asyncio
from contextlib import contextmanager


class Address:
    """One client address's AUTHs: under way now, and finished so far (while anyone is watching it)."""

    __slots__ = ("under_way", "finished", "watchers", "_freed")

    def __init__(self):
        self.under_way = self.finished = self.watchers = 0
        self._freed = asyncio.Event()

    def since(self, finished_before: int) -> int:
        """AUTHs that may be missing from failures read when `finished` was `finished_before`: those under way now
        and those that finished (and recorded their failure) since."""
        return self.under_way + self.finished - finished_before

    async def wait_freed(self) -> None:
        await self._freed.wait()


class InFlight:
    """Runs on the event loop's thread only (no locks). An address is forgotten once nobody uses it."""

    def __init__(self):
        self._addresses: dict[str, Address] = {}

    @contextmanager
    def watch(self, key: str):
        address = self._addresses.get(key)
        if address is None:
            address = self._addresses[key] = Address()
        address.watchers += 1
        try:
            yield address
        finally:
            address.watchers -= 1
            self._forget_if_idle(key, address)

    @contextmanager
    def hold(self, key: str, address: Address):
        """One AUTH under way from `address` (taken while watching it), until its result is recorded."""
        address.under_way += 1
        try:
            yield
        finally:
            address.under_way -= 1
            address.finished += 1
            freed, address._freed = address._freed, asyncio.Event()
            freed.set()
            self._forget_if_idle(key, address)

    def _forget_if_idle(self, key: str, address: Address) -> None:
        if not address.under_way and not address.watchers and self._addresses.get(key) is address:
            del self._addresses[key]
