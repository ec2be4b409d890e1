"""The submission relay: aiosmtpd handler, listeners, graceful stop, TLS reload — `run_relay` runs it all.

`manage.py runrelay` parses arguments and signals, then calls `run_relay`; tests call it in a thread on free
ports. Database work and password hashing run in worker threads (relay.smtpd.threads), never on the event loop.
"""

import asyncio
import logging
import signal
import sys
import threading
from base64 import b64decode
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import MISSING, AuthResult
from django.conf import settings
from django.db import DatabaseError

from accounts.networks import parse_networks
from accounts.quotas import QuotaExceeded
from relay import eventlog, loop_reads, metrics
from relay.smtpd import fairloop, threads
from relay.smtpd.limits import ClientLimits
from relay.smtpd.httpd import start_http
from relay.smtpd.inflight import InFlight
from relay.smtpd.protocol import INTERNAL_ERROR, HookNames, RelaySMTP
from relay.smtpd.threads import DbRunner, HashQueueFull
from relay.smtpd.tls import TlsStore, tls_version
from relay.submission import auth
from relay.submission.accept import Submission, accept_messages, accept_messages_on_loop, notifier, parse_headers
from relay.submission.policy import (
    Reject,
    check_path,
    check_recipient_count,
    check_sender,
    check_size,
    may_send_as,
    size_parameter,
)

AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_TEMPFAIL = "454 4.7.0 Temporary authentication failure, please try again later"
AUTH_LOCKED = "421 4.7.0 Too many failed authentication attempts, try again later"
# RFC 4954 6: 530 5.7.0 answers a command that needs authentication when the client has none. A login revoked
# mid-session (credential revoked, mailbox disabled or its password changed, domain, customer or reseller
# suspended) is no authentication any more: the session loses it and stays open, and everything but a new AUTH
# gets 530 — a good client tells its user, none retries with the same login as it would after a 4xx.
LOGIN_REVOKED = "530 5.7.0 Authentication required: this login is no longer valid"
FROM_REJECTED = "550 5.7.1 From: header address rejected: not owned by user"
# RFC 5322 3.6: exactly one From: field, a list of mailboxes; RFC 3463 5.6.0 for content that is not acceptable.
FROM_MALFORMED = "554 5.6.0 Message refused"


class RelayHandler(HookNames):
    hook_prefixes = ("handle_", "auth_")

    def __init__(self, db: DbRunner):
        self.db = db
        self.auths_in_flight = InFlight()
        # Read on the event loop (no thread's wake-up and the loop's after it, at every MAIL) where the database
        # allows: with two relay processes each gathered half as many MAILs a read (bench/README.md, relay.py).
        self.generations = (loop_reads.IntegersByKey(auth.generations_sql(), generation=threads.close_generation)
                            if loop_reads.on_loop() else None)
        # And so is the AUTH lookup, a prepared statement: a thread's wake-up and the loop's after it at every login,
        # the thread's interpreter time, and the server's planning of the statement (bench/README.md, relay.py).
        self.lookups = loop_reads.PreparedRows(generation=threads.close_generation) if loop_reads.on_loop() else None
        # And the accepts are written from it, one writer (and connection) a write lane, chosen by the customer as
        # the lanes are: one customer's transactions wait for each other here, not on its quota rows' locks.
        self.writers = [writer for writer in (threads.loop_writer(self._write_on_loop) for _ in db.lanes) if writer]

    async def aclose(self) -> None:
        if self.generations is not None:
            await self.generations.close()
        if self.lookups is not None:
            await self.lookups.close()
        for writer in self.writers:
            await writer.close()

    async def _accept(self, submission: Submission, *, lane: int, size: int):
        # SQLite, or a large message (spooled content is read from its file there too): a write lane's thread.
        if not self.writers or not isinstance(submission.content, bytes) or size > loop_reads.WRITE_ON_LOOP_BYTES:
            return await self.db.batch(accept_messages, submission, lane=lane, size=size)
        return await self.writers[lane % len(self.writers)].write(submission, size)

    async def _write_on_loop(self, submissions: list[Submission], writer: loop_reads.SharedWrites) -> list:
        """The messages that arrived while the writer's last transaction ran, in one transaction sent from the event
        loop (relay.submission.accept.accept_messages_on_loop): no write lane's thread to wake and wake the loop
        back, nor to take turns with for the interpreter lock. A batch with a refusal in it (a limit reached, a
        sender deleted) or too large for one statement goes to a write lane's thread, where accept_messages decides
        each message and records the refusal."""
        stored = await accept_messages_on_loop(submissions, writer)
        if stored is None:
            lane = submissions[0].principal.customer_id
            stored = await self.db.write(accept_messages, submissions, lane=lane)
        return stored

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        # aiosmtpd already lists SIZE, 8BITMIME, SMTPUTF8, STARTTLS and AUTH (the latter once TLS is up).
        return responses[:-1] + ["250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_AUTH(self, server, session, envelope, args):
        if session.authenticated:
            return "503 5.5.1 Already authenticated"
        if envelope.mail_from:  # RFC 4954 4: not during a mail transaction
            return "503 5.5.1 AUTH is not permitted during a mail transaction"
        return MISSING

    # --- AUTH mechanisms (replace aiosmtpd's, whose `authenticator` would have to block the loop) ---------

    async def auth_PLAIN(self, server, args):
        blob = await self._first_response(server, args, "")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Cannot split the PLAIN response into authzid, authcid and password")
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        # RFC 4616: acting as another identity is not offered here; it fails like a wrong password.
        return await self._login(server, login, password, valid_request=authzid in (b"", login))

    async def auth_LOGIN(self, server, args):
        login = await self._first_response(server, args, server.AuthLoginUsernameChallenge)
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._login(server, login, password)

    async def _first_response(self, server, args, challenge: str) -> bytes | None:
        """The initial response given with AUTH (RFC 4954 4), else the answer to a first challenge."""
        if len(args) == 1:
            blob = await server.challenge_auth(challenge)
            return None if blob is MISSING else blob
        try:
            return b64decode(args[1].encode(), validate=True)
        except ValueError:
            await server.push("501 5.5.2 Cannot decode base64")
            return None

    async def _login(self, server, login: bytes, password: bytes, *, valid_request: bool = True):
        try:
            username, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            username, secret, valid_request = login.decode("utf-8", "replace"), "", False
        try:
            result = await self._check(server, username, secret, valid_request)
        except DatabaseError as error:
            metrics.AUTH.labels(result="tempfail").inc()
            server.event("auth", username=username, result="tempfail", error=type(error).__name__)
            await server.push(AUTH_TEMPFAIL)
            return AuthResult(success=False, handled=True)
        except HashQueueFull:
            # RFC 4954 6: 454 4.7.0 when the server cannot verify now; the client retries later, instead of
            # waiting behind every hash already queued.
            metrics.AUTH.labels(result="busy").inc()
            server.event("auth", username=username, result="busy")
            await server.push(AUTH_TEMPFAIL)
            return AuthResult(success=False, handled=True)
        if result.principal is not None:
            metrics.AUTH.labels(result="success").inc()
            server.event("auth", username=username, result="ok", **result.principal.log_fields)
            return AuthResult(success=True, auth_data=result.principal, message=AUTH_OK)
        if result.delay:
            await asyncio.sleep(result.delay)
        if result.locked:
            metrics.AUTH.labels(result="locked").inc()
            server.event("auth", username=username, result="locked")
            server.hang_up(AUTH_LOCKED)
            return AuthResult(success=False, handled=True)
        metrics.AUTH.labels(result="failure").inc()
        server.event("auth", username=username, result="failed")
        await server.push(AUTH_INVALID)
        return AuthResult(success=False, handled=True)

    async def _check(self, server, username: str, secret: str, valid_request: bool) -> auth.LoginResult:
        client = server.client_ip or ""
        with self.auths_in_flight.watch(client) as address:
            while True:
                finished = address.finished
                candidate = await self._lookup(username, server.client_ip)
                if candidate.locked:
                    return auth.LoginResult(locked=True)
                # Failures under way count as much as recorded ones: at most the address's limit is ever hashed.
                under_way = address.since(finished)
                if not under_way or under_way + candidate.address_failures < settings.RELAY_AUTH_MAX_FAILURES:
                    break
                if address.under_way:
                    await address.wait_freed()
                # else they finished while the limits were read: read them again
            with self.auths_in_flight.hold(client, address):
                verified = auth.verify_quickly(candidate=candidate, password=secret, valid_request=valid_request)
                if verified is auth.SLOW:
                    verified = await self.db.hash(auth.verify, candidate=candidate, password=secret,
                                                  valid_request=valid_request)
                if verified is not None:
                    if verified.writes:
                        await self.db.batch(auth.succeeded_many, (verified, server.client_ip),
                                            lane=verified.principal.customer_id)
                    return auth.LoginResult(principal=verified.principal)
                return await self.db.write(auth.failed, username=username, client_ip=server.client_ip)

    async def _lookup(self, username: str, client_ip: str) -> auth.Candidate:
        if self.lookups is None:
            return await self.db.gather(auth.lookup_many, (username, client_ip))
        candidate = await auth.lookup_on_loop(self.lookups, username, client_ip)
        await fairloop.fair_share()  # as after a gathered read: the sessions it answers go on turn by turn
        return candidate

    # --- the transaction -----------------------------------------------------------------------------------

    async def _still_good(self, server, session) -> bool:
        """Whether the session's login is still good: the customer's login generation read at AUTH is read again
        (one indexed row, gathered with the other sessions' MAILs); only when it moved is the login looked up as at
        AUTH, and the session goes on with what it finds or loses its authentication."""
        principal = session.auth_data
        if self.generations is not None:
            generation = await self.generations.get(principal.customer_id)
            await fairloop.fair_share()  # as after a gathered read: the sessions it answers go on turn by turn
        else:
            generation = await self.db.gather(auth.generations_many, principal.customer_id)
        if generation == principal.login_generation:
            return True
        current = await self.db.gather(auth.relogin_many, (principal, server.client_ip))
        if current is not None:
            session.auth_data = current
            return True
        server.event("revoked", result="refused")
        session.authenticated, session.auth_data = False, None
        return False

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        try:
            if not await self._still_good(server, session):
                return LOGIN_REVOKED
        except DatabaseError as error:
            server.event("revoked", result="tempfail", error=type(error).__name__)
            return INTERNAL_ERROR
        principal = session.auth_data
        try:
            local, domain = check_path(f"<{address}>", smtputf8=envelope.smtp_utf8)
            check_sender(principal, local, domain)
            size = size_parameter(mail_options)
            if size is not None:
                check_size(principal, size)
        except Reject as reject:
            return reject.reply
        envelope.mail_from = f"{local}@{domain}"
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        try:
            local, domain = check_path(f"<{address}>", smtputf8=envelope.smtp_utf8)
            check_recipient_count(session.auth_data, len(envelope.rcpt_tos))
        except Reject as reject:
            return reject.reply
        address = f"{local}@{domain}"
        if address not in envelope.rcpt_tos:  # a repeated recipient gets one copy and counts once
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        principal = session.auth_data
        content = envelope.original_content
        try:
            check_size(principal, len(content))
        except Reject as reject:
            return reject.reply
        # A short header in plain forms is read here, in microseconds (a thread's hand-off cost more); any other
        # is decoded on a thread, and spooled content is read from its file there too.
        headers = parse_headers(content, quick=True) if isinstance(content, bytes) else None
        if headers is None:
            headers = await asyncio.to_thread(
                lambda: parse_headers(content if isinstance(content, bytes) else content.header_block()))
        if headers.from_problem:
            return f"{FROM_MALFORMED}: {headers.from_problem}"
        if not headers.from_addresses or not all(self._from_allowed(principal, a) for a in headers.from_addresses):
            return FROM_REJECTED
        submission = Submission(principal=principal, mail_from=envelope.mail_from, recipients=envelope.rcpt_tos,
                                content=content, client_ip=server.client_ip, helo=session.host_name or "",
                                tls_version=tls_version(server.transport), headers=headers)
        try:
            message = await self._accept(submission, lane=principal.customer_id, size=len(content))
        except QuotaExceeded as exceeded:
            metrics.QUOTA_REJECTIONS.labels(level=exceeded.level.scope).inc()
            return f"451 4.7.1 {exceeded}"
        metrics.ACCEPTED_MESSAGES.inc()
        metrics.ACCEPTED_BYTES.inc(message.size)
        metrics.ACCEPTED_RECIPIENTS.inc(len(envelope.rcpt_tos))
        server.event("accepted", queue_id=message.queue_id, recipients=len(envelope.rcpt_tos), size=message.size,
                     result="queued")
        return f"250 2.0.0 Ok: queued as {message.queue_id}"

    @staticmethod
    def _from_allowed(principal, address: str) -> bool:
        try:
            parsed = check_path(f"<{address}>", smtputf8=True)
        except Reject:
            return False
        return parsed is not None and may_send_as(principal, *parsed)


@dataclass
class RelayConfig:
    cert: Path
    key: Path
    submission: tuple[str, int] | None = None  # STARTTLS (587)
    smtps: tuple[str, int] | None = None  # implicit TLS (465)
    http: tuple[str, int] | None = None  # /health and /metrics
    proxy_from: list[str] = field(default_factory=list)
    reuse_port: bool = False
    hostname: str = ""
    grace: float = 30.0  # seconds a stop waits for sessions in DATA
    db_workers: int = 4  # more threads only queue for the GIL and delay the event loop
    hash_workers: int = 0  # 0: threads.hash_workers_for(1), i.e. RELAY_HASH_WORKERS or every core
    # Start the hashing processes before listening (runrelay), rather than at the first slow hash (tests).
    start_hashing: bool = False
    timeout: float = 300.0  # RFC 5321 4.5.3.2.7: the server waits at least 5 minutes for a command


class Relay:
    # What a subclass serving another port changes (relay.smtpd.mx.Mx): its handler, its session protocol and
    # options, and its listeners; the machinery (threads, TLS, PROXY, stop, health) is this class's.
    handler_class = RelayHandler
    protocol_class = RelaySMTP
    write_lanes: int | None = None  # None: RELAY_WRITE_LANES, or half the database threads

    def __init__(self, config: RelayConfig):
        self.config = config
        self.tls = TlsStore(config.cert, config.key)
        self.db = DbRunner(config.db_workers, config.hash_workers, lanes=self.write_lanes)
        self.handler = self.handler_class(self.db)
        self.proxy_networks = parse_networks(config.proxy_from)
        self.sessions: set[RelaySMTP] = set()
        self.clients = ClientLimits(max_connections=settings.RELAY_MAX_CONNECTIONS_PER_CLIENT,
                                    rate_per_minute=settings.RELAY_CONNECTION_RATE_PER_CLIENT,
                                    exempt=settings.RELAY_CONNECTION_LIMIT_EXEMPT)
        self.stopping = False
        self.servers: list[asyncio.AbstractServer] = []
        self.ports: dict[str, int] = {}

    def listeners(self) -> list[tuple[str, tuple[str, int] | None, bool]]:
        """(name, address or None, implicit TLS) of each listener."""
        return [("submission", self.config.submission, False), ("smtps", self.config.smtps, True)]

    def session_options(self, implicit_tls: bool) -> dict:
        return {"require_starttls": not implicit_tls, "auth_required": True, "auth_require_tls": True}

    def _factory(self, listener: str, implicit_tls: bool):
        options = self.session_options(implicit_tls)

        def make() -> RelaySMTP:
            return self.protocol_class(
                self.handler, listener=listener, implicit_tls=implicit_tls, proxy_networks=self.proxy_networks,
                relay=self, hostname=self.config.hostname or settings.RELAY_HOSTNAME, ident="ESMTP hostingmail",
                tls_context=self.tls.context, enable_SMTPUTF8=True, data_size_limit=settings.RELAY_MAX_MESSAGE_SIZE,
                timeout=self.config.timeout, **options,
            )
        return make

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.config.start_hashing:
            await self.db.start_hashing()
        for listener, address, implicit in self.listeners():
            if address is None:
                continue
            server = await loop.create_server(self._factory(listener, implicit), host=address[0], port=address[1],
                                              reuse_address=True, reuse_port=self.config.reuse_port or None)
            self.servers.append(server)
            self.ports[listener] = server.sockets[0].getsockname()[1]
        if self.config.http is not None:

            server = await start_http(self, *self.config.http)
            self.servers.append(server)
            self.ports["http"] = server.sockets[0].getsockname()[1]
        eventlog.event("listening", **{k: v for k, v in self.ports.items()})

    def reload_tls(self) -> None:
        try:
            self.tls.reload()
        except Exception as error:  # keep serving with the certificate already loaded
            eventlog.event("tls_reload", level=logging.ERROR, result="failed", error=str(error))
            return
        eventlog.event("tls_reload", result="ok", cert=str(self.tls.cert))

    async def stop(self) -> None:
        """Stop accepting; close idle sessions with 421; give sessions inside DATA `grace` seconds to finish."""
        self.stopping = True
        for server in self.servers:
            server.close()
        for session in list(self.sessions):
            if not session.busy:
                self._close(session)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.grace
        while self.sessions and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions):
            self._close(session, forced=True)
        await asyncio.sleep(0)
        if hasattr(self.handler, "aclose"):  # the MX's connection on the loop
            await self.handler.aclose()
        await loop.run_in_executor(None, self.db.shutdown)
        await loop.run_in_executor(None, notifier.drain)
        eventlog.event("stopped", unfinished=len(self.sessions))

    @staticmethod
    def _close(session: RelaySMTP, forced: bool = False) -> None:
        if session.transport is None:
            return
        session.event("shutdown", result="forced" if forced else "closed")
        if forced:
            session.abort()
        else:
            session.hang_up()


async def serve(config: RelayConfig, *, ready=None, stop_event: threading.Event | None = None,
                install_signals: bool = True, server_class: type[Relay] = Relay) -> None:
    loop = asyncio.get_running_loop()
    relay = server_class(config)
    await relay.start()
    stop = asyncio.Event()
    if install_signals:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, relay.reload_tls)
    if ready is not None:
        ready(relay)
    if stop_event is None:
        await stop.wait()  # no wake-up while serving: an idle process stays idle
    # Stopped from another thread (tests): looked at ten times a second.
    while not stop.is_set() and not stop_event.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.1)
        except TimeoutError:
            pass
    await relay.stop()


# While a database thread runs Python code, each system call of the event loop (a send, a select) hands it the
# interpreter lock, and the loop waits up to this long to get it back: a turn with ten sends waited ten intervals.
# At 1 ms the worst lag of a storm of 50 cold AUTHs (bench/relay.py, PostgreSQL) was over 10 ms in 7 of 24 storms,
# at 0.2 ms in 4 of 27, the accept rate unchanged within the machine's noise (bench/README.md).
SWITCH_INTERVAL = 0.0002


def run_relay(config: RelayConfig, *, ready=None, stop_event: threading.Event | None = None,
              install_signals: bool = True, server_class: type[Relay] = Relay) -> None:
    """Serve until SIGTERM/SIGINT (or stop_event); SIGHUP reloads the certificate. Blocks."""
    # aiosmtpd logs every command line at INFO, and what clients do wrong at WARNING with their raw octets;
    # relay.eventlog already writes one line per session event (and each refusal).
    # A worker thread holds the GIL for at most SWITCH_INTERVAL before the event loop gets it (Python's default: 5 ms).
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    logging.getLogger("mail.log").setLevel(max(logging.ERROR, logging.getLogger("mail.log").level))
    with asyncio.Runner(loop_factory=fairloop.new_event_loop) as runner:
        runner.run(serve(config, ready=ready, stop_event=stop_event, install_signals=install_signals,
                         server_class=server_class))
