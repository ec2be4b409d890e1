"""Per-client-address connection limits, as Postfix's anvil keeps them: connections open at once, and connections
begun in the last minute.

Kept in the memory of one relay process: with `runrelay --processes N` (SO_REUSEPORT) the kernel spreads a
client's connections over the processes, so a client may hold up to N times the limit in all.
"""

import time
from collections import deque

from accounts.networks import address_in, parse_networks

WINDOW = 60.0  # seconds of the rate limit


class ClientLimits:
    def __init__(self, *, max_connections: int, rate_per_minute: int, exempt=()):
        self.max_connections = max_connections  # 0: no limit
        self.rate_per_minute = rate_per_minute  # 0: no limit
        self.exempt = parse_networks(exempt)
        self.open: dict[str, int] = {}
        # When the client's last `rate_per_minute` connections began; refused attempts count too, as anvil's do, so
        # a client that keeps hammering stays refused. Bounded per client by maxlen.
        self.begun: dict[str, deque[float]] = {}
        self._sweep_at = 0.0

    def admit(self, ip: str, now: float | None = None) -> bool:
        """Count a new connection from `ip`; False (and not counted as open) when it is over a limit."""
        now = time.monotonic() if now is None else now
        over = bool(self.max_connections) and self.open.get(ip, 0) >= self.max_connections
        if self.rate_per_minute:
            begun = self.begun.get(ip)
            if begun is None:
                begun = self.begun[ip] = deque(maxlen=self.rate_per_minute)
            over = over or (len(begun) == self.rate_per_minute and begun[0] > now - WINDOW)
            begun.append(now)
            self._sweep(now)
        if over and not (self.exempt and address_in(ip, self.exempt)):
            return False
        self.open[ip] = self.open.get(ip, 0) + 1
        return True

    def release(self, ip: str) -> None:
        left = self.open.get(ip, 0) - 1
        if left > 0:
            self.open[ip] = left
        else:
            self.open.pop(ip, None)

    def _sweep(self, now: float) -> None:
        # Forget clients not seen for a minute, once a minute: memory follows the clients of the last minute.
        if now < self._sweep_at:
            return
        self._sweep_at = now + WINDOW
        for ip in [ip for ip, begun in self.begun.items() if not begun or begun[-1] <= now - WINDOW]:
            del self.begun[ip]
