"""Limits on what one client may take: connections open at once and begun per minute from its address, as Postfix's
anvil keeps them (ClientLimits), and commands without progress in a session, as Postfix's smtpd_junk_command_limit
(NoProgressLimit).

Kept in the memory of one relay process: with `runrelay --processes N` (SO_REUSEPORT) the kernel spreads a
client's connections over the processes, so a client may hold up to N times the limit in all.
"""

import time
from collections import deque

from aiosmtpd.smtp import SMTP
from django.conf import settings

from accounts.networks import address_in, parse_networks
from relay.smtpd.replies import NO_PROGRESS

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


def same_help(method):
    """The relay's version of one of aiosmtpd's commands: HELP answers with aiosmtpd's syntax text for it."""
    base = getattr(SMTP, method.__name__)
    for attribute in ("__smtp_syntax__", "__smtp_syntax_extended__", "__smtp_syntax_when__"):
        setattr(method, attribute, getattr(base, attribute, None))
    return method


class NoProgressLimit:
    """NOOP, RSET, HELP, HELO and EHLO (and VRFY, in relay.smtpd.protocol) counted between accepted messages:
    a client looping on them holds a connection doing nothing. Past RELAY_MAX_JUNK_COMMANDS: 421 and close."""

    junk_commands = 0  # the session sets it back to 0 when a message is accepted

    async def _no_progress(self) -> bool:
        """Count a command that moves nothing forward; past the limit say 421 and close (True)."""
        self.junk_commands += 1
        limit = settings.RELAY_MAX_JUNK_COMMANDS
        if limit and self.junk_commands > limit:
            self.event("junk_limit", result="closed")
            self.hang_up(NO_PROGRESS)
            return True
        return False

    @same_help
    async def smtp_NOOP(self, arg: str) -> None:
        if not await self._no_progress():
            await super().smtp_NOOP(arg)

    @same_help
    async def smtp_RSET(self, arg: str) -> None:
        if not await self._no_progress():
            await super().smtp_RSET(arg)

    @same_help
    async def smtp_HELP(self, arg: str) -> None:
        if not await self._no_progress():
            await super().smtp_HELP(arg)

    @same_help
    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._no_progress():
            await super().smtp_HELO(hostname)

    @same_help
    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._no_progress():
            await super().smtp_EHLO(hostname)

