"""The load generator of bench/relay.py: asyncio SMTP clients (STARTTLS + AUTH PLAIN), the same for every server.

A plain asyncio client rather than smtplib in threads, so the generator costs little CPU next to the server
it measures and 20 sessions really run at once.
"""

import asyncio
import base64
import functools
import ssl
import statistics
import time
from dataclasses import dataclass, field
from email.utils import formatdate, make_msgid


class SmtpError(Exception):
    pass


@functools.cache
def client_tls() -> ssl.SSLContext:
    """One context for every session: ssl.create_default_context() parses the system's CA bundle, 10-50 ms of the
    generator's CPU a session (more than the server spent on it), for a verification that is switched off anyway."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the servers use a throw-away self-signed certificate on loopback
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


REPLY_TIMEOUT = 120.0  # a server that stops answering fails the session instead of hanging the run


class Client:
    def __init__(self, host: str, port: int, local_address: str | None = None):
        self.host, self.port = host, port
        self.local_addr = (local_address, 0) if local_address else None  # e.g. 127.0.0.N: a client of its own
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            try:
                line = await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT)
            except TimeoutError:
                raise SmtpError(f"no reply within {REPLY_TIMEOUT:.0f} s") from None
            if not line:
                raise SmtpError("connection closed")
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(item[4:] for item in lines)

    async def command(self, line: str, expect: int) -> str:
        self.writer.write(line.encode() + b"\r\n")
        code, text = await self.reply()
        if code != expect:
            raise SmtpError(f"{line.split()[0]} -> {code} {text}")
        return text

    async def connect_tls(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=self.local_addr)
        code, text = await self.reply()
        if code != 220:
            raise SmtpError(f"greeting {code} {text}")
        await self.command("EHLO bench.test", 250)
        await self.command("STARTTLS", 220)
        await self.writer.start_tls(client_tls())
        await self.command("EHLO bench.test", 250)

    async def auth_plain(self, username: str, password: str) -> None:
        token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
        await self.command(f"AUTH PLAIN {token}", 235)

    async def send(self, sender: str, recipient: str, body: bytes) -> str:
        await self.command(f"MAIL FROM:<{sender}> SIZE={len(body)}", 250)
        await self.command(f"RCPT TO:<{recipient}>", 250)
        await self.command("DATA", 354)
        self.writer.write(body + b".\r\n")
        code, text = await self.reply()
        if code != 250:
            raise SmtpError(f"end of DATA -> {code} {text}")
        return text

    async def quit(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self.reply(), 5)
        except (SmtpError, OSError, TimeoutError):
            pass
        self.writer.close()


def message(sender: str, recipient: str, size: int) -> bytes:
    """A plain-text message of about `size` bytes, dot-stuffed and CRLF-terminated, ready for DATA."""
    head = (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: bench\r\nDate: {formatdate()}\r\n"
            f"Message-ID: {make_msgid(domain='bench.test')}\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again, for the benchmark.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


@dataclass
class LoadResult:
    sessions: int
    messages: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    auth_latencies: list[float] = field(default_factory=list)  # AUTH command to its 235, each session
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group, when measured

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def logins(self) -> int:
        return len(self.auth_latencies)

    @property
    def login_rate(self) -> float:
        return self.logins / self.seconds if self.seconds else 0.0

    def percentile(self, p: float, *, of: str = "latencies") -> float:
        values = getattr(self, of)
        if not values:
            return float("nan")
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


async def _session(result: LoadResult, host: str, port: int, login: tuple[str, str, str], recipient: str,
                   messages: int, size: int, ready: "Gate | None") -> None:
    username, password, sender = login
    client = Client(host, port)
    try:
        try:
            await client.connect_tls()
            started = time.perf_counter()
            await client.auth_plain(username, password)
            result.auth_latencies.append(time.perf_counter() - started)
        finally:
            if ready is not None:
                await ready.arrive()
        for _ in range(messages):
            body = message(sender, recipient, size)
            started = time.perf_counter()
            await client.send(sender, recipient, body)
            result.latencies.append(time.perf_counter() - started)
            result.messages += 1
        await client.quit()
    except (SmtpError, OSError) as exc:
        result.errors.append(str(exc))


class Gate:
    """Holds every session until all have arrived (connected and authenticated), then lets them go at once."""

    def __init__(self, count: int):
        self.count, self.opened = count, asyncio.Event()
        self.opened_at = 0.0

    async def arrive(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.opened_at = time.perf_counter()
            self.opened.set()
        await self.opened.wait()


async def _one_after_another(result: LoadResult, host: str, port: int, logins: list[tuple[str, str, str]],
                             recipient: str, messages: int, size: int, until: float) -> None:
    for login in logins:
        if time.perf_counter() > until:
            return
        await _session(result, host, port, login, recipient, messages, size, None)


async def run_load(*, host: str, port: int, logins: list[tuple[str, str, str]], recipient: str, sessions: int,
                   messages: int, size: int, messages_only: bool = False, sessions_each: int = 1,
                   deadline: float | None = None) -> LoadResult:
    """`sessions` concurrent sessions, each: connect, STARTTLS, AUTH PLAIN, `messages` messages, QUIT.

    logins are (username, password, sender address); session i uses logins[i % len(logins)].

    messages_only: the clock starts once every session has connected and authenticated, so the figure is
    the rate of accepting messages alone.

    sessions_each: each of the `sessions` clients runs that many sessions one after another, the k-th of client i
    with logins[(i + k * sessions) % len(logins)]: 20 clients, 5 sessions each, go through 100 logins once. With a
    `deadline` (seconds) a client starts no session after it.
    """
    if sessions_each > 1:
        if messages_only:
            raise ValueError("messages_only times sessions that start together: one session a client")
        result = LoadResult(sessions=sessions * sessions_each)
        started = time.perf_counter()
        until = started + deadline if deadline is not None else float("inf")
        await asyncio.gather(*(
            _one_after_another(result, host, port, [logins[(i + k * sessions) % len(logins)]
                                                    for k in range(sessions_each)], recipient, messages, size, until)
            for i in range(sessions)
        ))
        result.seconds = time.perf_counter() - started
        return result
    result = LoadResult(sessions=sessions)
    gate = Gate(sessions) if messages_only else None
    started = time.perf_counter()
    await asyncio.gather(*(
        _session(result, host, port, logins[i % len(logins)], recipient, messages, size, gate)
        for i in range(sessions)
    ))
    result.seconds = time.perf_counter() - (gate.opened_at if gate else started)
    return result


async def _probe(client: Client, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await client.command("NOOP", 250)
        samples.append(time.perf_counter() - started)
        await asyncio.sleep(0.002)


async def auth_storm_lag(*, host: str, port: int, logins: list[tuple[str, str, str]]) -> dict:
    """Extra NOOP round-trip time on an idle session while every login in `logins` AUTHs at once.

    The connections and their TLS handshakes are made first, so only the AUTHs (password hashing and the
    database reads behind them) fall inside the measured storm. A server that hashes on its event loop shows
    the hashing time here; one that hashes off the loop shows scheduling noise only.
    """
    probe = Client(host, port)
    await probe.connect_tls()
    calm: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_probe(probe, calm, stop))
    await asyncio.sleep(0.5)
    stop.set()
    await task
    clients = [Client(host, port) for _ in logins]
    connect_start = time.time()
    await asyncio.gather(*(c.connect_tls() for c in clients))
    # Fifty TLS handshakes at once are a burst of their own (the server's last turns of it may still be running
    # when the clients have their answers): keep it out of the storm too.
    await asyncio.sleep(0.2)
    storm: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_probe(probe, storm, stop))
    started, wall_start = time.perf_counter(), time.time()
    outcomes = await asyncio.gather(*(c.auth_plain(*login[:2]) for c, login in zip(clients, logins)),
                                    return_exceptions=True)
    storm_seconds, wall_end = time.perf_counter() - started, time.time()
    stop.set()
    await task
    # Fifty sessions closing at once are a burst of their own: keep it out of the spans of the storm.
    await asyncio.sleep(0.2)
    await asyncio.gather(*(c.quit() for c in clients), probe.quit())
    baseline = statistics.median(calm)
    return {
        "baseline_ms": baseline * 1000,
        "lag_max_ms": (max(storm) - baseline) * 1000,
        "lag_p50_ms": (statistics.median(storm) - baseline) * 1000,
        "storm_seconds": storm_seconds,
        "storm_wall": (wall_start, wall_end),
        "connect_wall": (connect_start, wall_start),  # the connections and their TLS handshakes, then the pause
        "auth_failures": [str(o) for o in outcomes if isinstance(o, BaseException)],
        "probes": len(storm),
    }
