"""aiosmtpd's SMTP protocol, adjusted for submission.

- Replies get enhanced status codes (RFC 2034/3463) where aiosmtpd's built-in texts lack them (relay.smtpd.replies).
- Implicit TLS (port 465, RFC 8314) is done here, after an optional PROXY header, as the same upgrade
  STARTTLS does: AUTH then counts as "over TLS" (aiosmtpd issue #281) and a reloaded certificate serves
  new connections at once.
- The real client address (from the PROXY header of a trusted load balancer) is kept on the protocol,
  because aiosmtpd makes a fresh Session after every TLS upgrade.
- Uncaught errors answer 451 4.3.0 and are logged with the session; the client never sees a traceback. What a
  client does to itself (a failed TLS handshake, a reset) is one INFO line, not an error.
- No reply carries the client's own octets (reply injection), and nothing a client pipelined behind a reply that
  closes the session (221, 421, the 502 for too many unknown commands) is run.
- Limits per session: commands that make no progress (NOOP, RSET, VRFY, HELP, HELO/EHLO) as Postfix's
  smtpd_junk_command_limit, and per client address at the greeting (relay.smtpd.limits).
"""

import asyncio
import asyncio.sslproto as sslproto
import collections
import functools
import logging
import secrets
import ssl
from base64 import b64decode, b64encode
from binascii import Error as Base64Error

from aiosmtpd.proxy_protocol import get_proxy
from aiosmtpd.smtp import MISSING, SMTP, Session, TLSSetupException
from django.conf import settings
from django.db import DatabaseError

from accounts.networks import address_in
from relay import eventlog, metrics
from relay.smtpd import fairloop, stream
from relay.smtpd.limits import NoProgressLimit, same_help
from relay.smtpd.replies import CLOSING, INTERNAL_ERROR, SHUTDOWN, TOO_MANY_CONNECTIONS, clean
from relay.submission.policy import Reject, check_path, split_path


class _PathParser:
    """What aiosmtpd's SMTP._getaddr reads of its session: the local part limit, nothing else."""

    def __init__(self, local_part_limit: int):
        self.local_part_limit = local_part_limit


@functools.lru_cache(maxsize=8192)
def _getaddr(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    try:
        return SMTP._getaddr(_PathParser(local_part_limit), arg)
    except (IndexError, ValueError, UnicodeError):  # the email package's parser on e.g. "user@": a bad path
        return None, None


# Seconds a hang-up waits for a TLS handshake under way to finish (to say its 421 over TLS) before dropping it.
TLS_HANDSHAKE_WAIT = 5.0


class QuietSession(Session):
    # aiosmtpd sets login_data on every AUTH and warns that it is deprecated; the principal is in auth_data.
    @property
    def login_data(self):
        return self._login_data

    @login_data.setter
    def login_data(self, value):
        self._login_data = value


class _CountingSSLProtocol(sslproto.SSLProtocol):
    """asyncio's TLS protocol, counting the octets the client sent: a connection closed before its first octet is
    a probe (a load balancer's health check, a port scan), not a failed handshake."""

    received = 0

    def buffer_updated(self, nbytes):
        self.received += nbytes
        super().buffer_updated(nbytes)


class HookNames:
    """dir() of a session or handler lists only the names aiosmtpd's SMTP constructor looks for.

    That constructor finds its commands, AUTH mechanisms and handler hooks with dir() and inspect.getmembers() on
    the new session and on the handler: every attribute of both was fetched and the lists sorted for every
    connection — 0.2 ms each, a 10 ms turn of the event loop when fifty clients connect at once. The names are
    worked out once per class (methods only: instances add none that the constructor wants).
    """

    hook_prefixes: tuple[str, ...] = ()
    _hook_names: dict[type, list[str]] = {}

    def __dir__(self):
        cls = type(self)
        names = HookNames._hook_names.get(cls)
        if names is None:
            names = HookNames._hook_names[cls] = [name for name in dir(cls) if name.startswith(cls.hook_prefixes)]
        return names


class RelaySMTP(HookNames, NoProgressLimit, SMTP):
    hook_prefixes = ("smtp_", "auth_")
    # The stream reader takes lines up to 12288 octets (AUTH, RFC 4954 4); DATA lines stay limited to 1000.
    line_length_limit = 12288 + 2

    def __init__(self, handler, *, listener: str, implicit_tls: bool = False, proxy_networks=(),
                 proxy_timeout: float = 10.0, relay=None, **kwargs):
        # aiosmtpd keeps command_size_limits on the class (shared by every session); keep ours per session.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        super().__init__(handler, **kwargs)
        self.line_length_limit = 1001
        self.command_size_limits["AUTH"] = 12288
        self.listener = listener
        self.implicit_tls = implicit_tls
        self.proxy_networks = list(proxy_networks)
        self.proxy_timeout = proxy_timeout
        self.relay = relay
        self._reply_after_tls: str | None = None
        self.session_id = secrets.token_hex(5)
        self.client_ip = ""
        self.busy = False  # inside DATA: a graceful shutdown waits for it
        self.junk_commands = 0  # since the last message accepted
        self._counted = False  # in the relay's per-client connection count
        self._said_goodbye = False  # 221 sent: the session ended as the client asked

    def _create_session(self) -> Session:
        return QuietSession(self.loop)

    def _cb_client_connected(self, reader, writer):
        # aiosmtpd makes a plain StreamReader; ours adds the turn budget (relay.smtpd.fairloop) to readuntil and reads a
        # message's content in bulk (relay.smtpd.stream).
        reader.__class__ = stream.SessionReader
        super()._cb_client_connected(reader, writer)

    # --- logging context -----------------------------------------------------------------------------------

    def log_fields(self) -> dict:
        fields = {"session": self.session_id, "listener": self.listener, "client": self.client_ip}
        principal = getattr(self.session, "auth_data", None) if self.session else None
        if principal is not None:
            fields.update(principal.log_fields)
        return fields

    def event(self, name: str, **fields) -> None:
        if eventlog.logger.isEnabledFor(logging.INFO):  # a few a message: not even their fields when not logged
            eventlog.event(name, **{**self.log_fields(), **fields})

    # --- replies -------------------------------------------------------------------------------------------

    async def push(self, status):
        if isinstance(status, str):
            status = clean(status)
            if status[:1] in "45":
                metrics.REJECTIONS.labels(reason=status[:9].strip()).inc()
                self.event("reply", result=status[:120])
            if status.startswith(CLOSING):
                self._reader.stop()
                self._said_goodbye = status.startswith("221 ")
        if self.transport is None or self.transport.is_closing():
            return  # the client is gone or being hung up on (a closed TLS transport would raise)
        await super().push(status)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # aiosmtpd closes the connection: the reply is never sent
            self.event("tls_failed", error=type(error.__cause__ or error).__name__)
            return "454 4.7.0 TLS not available"
        if isinstance(error, (ConnectionError, ssl.SSLError)) or self.transport is None or self.transport.is_closing():
            # What the client did (a reset, a broken TLS record, hanging up mid-reply), not a fault of ours.
            self.event("disconnect", result="client gone", error=type(error).__name__)
            return INTERNAL_ERROR  # goes nowhere: push() skips a closing transport
        if isinstance(error, DatabaseError):
            self.event("error", result="database unavailable", error=type(error).__name__)
        else:
            eventlog.event("error", level=logging.ERROR, exc_info=error, **self.log_fields(),
                           error=type(error).__name__)
        return INTERNAL_ERROR

    # --- connection setup: PROXY header, implicit TLS ------------------------------------------------------

    def connection_made(self, transport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first and self.relay is not None:
            self.relay.sessions.add(self)
        if self._reply_after_tls is not None:  # a hang-up waited for this TLS handshake to finish
            reply, self._reply_after_tls = self._reply_after_tls, None
            self.hang_up(reply)

    def connection_lost(self, error) -> None:
        if self.relay is not None:
            self.relay.sessions.discard(self)
        if self.client_ip:
            # After our 221 a client may close at once without reading what is still on its way to it (a TLS 1.3
            # session ticket, the close_notify): its kernel then answers with a reset. That is the session ending
            # as it should.
            normal = error is None or (self._said_goodbye and isinstance(error, ConnectionError))
            self.event("disconnect", result="closed" if normal else type(error).__name__)
        super().connection_lost(error)
        self._handler_coroutine.add_done_callback(self._release)  # once the session's task has unwound

    def eof_received(self):
        # aiosmtpd ends the session at the client's FIN but leaves the socket half-open (StreamReaderProtocol's
        # answer), and a session whose task had not started yet never closed it: CLOSE_WAIT until the idle timeout.
        super().eof_received()
        return False

    def _release(self, task: asyncio.Task | None = None) -> None:
        """Break the reference cycles a finished session is made of, so that it is freed at once.

        aiosmtpd keeps the session's own bound methods in its command and AUTH tables, the stream writer and the
        reader protocol point at each other, and the handler task keeps its CancelledError, whose traceback holds
        the frames that hold the session. Left to the cycle collector, every session's ~90 objects reached the
        oldest generation, and its full collections stopped the event loop for 10-40 ms.
        """
        if self._timeout_handle is not None:  # the idle timer would keep it until it fires
            self._timeout_handle.cancel()
        if self._counted:
            self._counted = False
            self.relay.clients.release(self.client_ip)
        if task is not None and not task.cancelled():
            task.exception()  # e.g. a reset while writing: said in the disconnect line, not "never retrieved"
        self._smtp_methods, self._auth_methods, self._handle_hooks = {}, {}, {}
        self._handler_coroutine = self._client_connected_cb = self._stream_writer = None
        self._reader = self._writer = self._tls_protocol = self._original_transport = None

    async def _handle_client(self) -> None:
        # Fifty clients connecting at once start fifty sessions in one turn: each greets within the turn's budget.
        await fairloop.fair_share()
        peer_ip = str(self.session.peer[0]) if self.session.peer else ""
        self.client_ip = peer_ip
        if self.proxy_networks:
            if not await self._read_proxy_header(peer_ip):
                self.transport.close()
                return
        metrics.SESSIONS.labels(listener=self.listener).inc()
        self.event("connect", peer=peer_ip)
        if self.implicit_tls:
            try:
                await self._start_tls()
            except Exception as error:
                if isinstance(error, ConnectionError) and not getattr(self._tls_protocol, "received", 1):
                    self.event("disconnect", result="closed before TLS")
                else:
                    self.event("tls_failed", error=type(error).__name__)
                error.__traceback__ = None  # whose frames hold the error and its waiter again: reference cycles
                self.abort()
                self._release()  # no connection_lost comes: this protocol was never connected through TLS
                return
            if self.transport.is_closing():  # hung up as the handshake finished (a stopping relay)
                return
        if self.relay is not None:
            if not self.relay.clients.admit(self.client_ip):
                self.event("refused", result="too many connections from the client's address")
                self.hang_up(TOO_MANY_CONNECTIONS)
                return
            self._counted = True
        await super()._handle_client()

    async def _read_proxy_header(self, peer_ip: str) -> bool:
        if not address_in(peer_ip, self.proxy_networks):
            self.event("proxy_refused", result="peer is not a trusted load balancer")
            return False
        self._reset_timeout(self.proxy_timeout)
        data = await get_proxy(self._reader)
        self._reset_timeout()
        if not data or not data.valid:
            self.event("proxy_refused", result=f"bad PROXY header: {getattr(data, 'error', '')}")
            return False
        if data.src_addr is not None:
            self.client_ip = str(data.src_addr)
        self.session.proxy_data = data
        return True

    async def _start_tls(self) -> None:
        # What smtp_STARTTLS does, without the 220: the client speaks TLS from its first byte.
        buffered = bytes(self._reader._buffer)  # e.g. a ClientHello sent right behind the PROXY header
        self._reader._buffer.clear()
        await self._upgrade(buffered)

    async def _upgrade(self, buffered: bytes) -> None:
        """Put TLS under the session, feeding it what was read already; the handshake has a time limit."""
        # A reader holding more than its limit paused the socket: the handshake would never be read.
        self._reader._maybe_resume_transport()
        waiter = self.loop.create_future()
        self._tls_protocol = _CountingSSLProtocol(self.loop, self, self.tls_context, waiter, server_side=True,
                                                  ssl_handshake_timeout=settings.RELAY_TLS_HANDSHAKE_TIMEOUT)
        self._original_transport = self.transport
        self._original_transport.set_protocol(self._tls_protocol)
        self.transport = self._tls_protocol._app_transport
        self._tls_protocol.connection_made(self._original_transport)
        if buffered:
            asyncio.protocols._feed_data_to_buffered_proto(self._tls_protocol, buffered)
        await waiter

    def hang_up(self, reply: str = SHUTDOWN) -> None:
        """Say 421 and close; a peer that never completes the TLS shutdown is dropped a second later.

        Half-way through a TLS handshake (STARTTLS answered, or implicit TLS), the reply would go out in clear text
        inside the handshake and the client would see it fail: the handshake finishes first (for at most
        TLS_HANDSHAKE_WAIT seconds) and the reply then goes out over TLS."""
        if self.transport is None:
            return
        if self._tls_protocol is not None and self.session.ssl is None:
            self._reply_after_tls = reply
            self.loop.call_later(TLS_HANDSHAKE_WAIT, self.abort)
            return
        self._reader.stop()
        try:
            self._writer.write(reply.encode() + b"\r\n")
        except Exception:
            pass
        self.transport.close()
        self.loop.call_later(1.0, self.abort)

    def abort(self) -> None:
        """Drop the connection now, without a TLS close_notify exchange the peer may never answer."""
        if self.relay is not None:
            # Before the TLS handshake completes, asyncio never calls connection_lost on this protocol.
            self.relay.sessions.discard(self)
        for transport in (self._original_transport, self.transport):
            if transport is not None:
                transport.abort()

    # --- commands ------------------------------------------------------------------------------------------

    def _getaddr(self, arg: str):
        # aiosmtpd parses a path with the email package's header parser and declares a class at each call: the
        # same answer for the same text, remembered.
        return _getaddr(arg, self.local_part_limit)

    def _wants_path_check(self, keyword: str, arg: str | None) -> bool:
        # Only where aiosmtpd would go on to parse the path: after EHLO and AUTH, with the keyword present.
        return bool(self.session.host_name and self.session.authenticated and arg is not None
                    and arg[:len(keyword)].upper() == keyword)

    async def _rejected_path(self, path: str, *, smtputf8: bool) -> bool:
        """Refuse relay tricks and malformed paths before aiosmtpd's lenient parser sees them."""
        try:
            check_path(path, smtputf8=smtputf8)
        except Reject as reject:
            await self.push(reject.reply)
            return True
        return False

    @same_help
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self._wants_path_check("FROM:", arg) and not self.envelope.mail_from:
            try:
                path, params = split_path(arg[5:])
            except Reject as reject:
                await self.push(reject.reply)
                return
            if any(not _octets(p[5:]) for p in params.split() if p[:5].upper() == "SIZE="):
                # aiosmtpd takes any Unicode digit ('²'.isdigit()) and then fails on int() (RFC 1870: 1*20DIGIT).
                await self.push("501 5.5.4 Syntax: SIZE=<number of octets>")
                return
            if await self._rejected_path(arg[5:], smtputf8="SMTPUTF8" in params.upper().split()):
                return
            # RFC 4954 5: AUTH=<identity> may be sent once AUTH is advertised; this relay has no use for it.
            kept = [p for p in params.split() if not p.upper().startswith("AUTH=")]
            arg = f"FROM:<{path}>" + "".join(f" {p}" for p in kept)
        await super().smtp_MAIL(arg)

    @same_help
    async def smtp_STARTTLS(self, arg: str) -> None:
        # aiosmtpd's, with the handshake's time limit and what was pipelined behind STARTTLS dropped at once.
        if self._tls_protocol is not None:  # aiosmtpd would wrap TLS inside TLS
            await self.push("554 5.5.1 TLS already active")
            return
        if arg:
            await self.push("501 Syntax: STARTTLS")
            return
        if not self.tls_context:
            await self.push("454 4.7.0 TLS not available")
            return
        await self.push("220 Ready to start TLS")
        # RFC 3207 4.2: nothing the client sent before the handshake is used (aiosmtpd dropped it after the
        # handshake, but a reader holding 24 KB of it had paused the socket, and the handshake never came).
        self._reader._buffer.clear()
        try:
            await self._upgrade(b"")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise TLSSetupException() from error

    async def challenge_auth(self, challenge, encode_to_b64: bool = True, log_client_response: bool = False):
        """aiosmtpd's, but an answer longer than a line may be (RFC 4954 4: 12288 octets) is read to its end and
        refused: aiosmtpd's readline() dropped what it had read and the rest of the line was run as a command."""
        challenge = challenge.encode() if isinstance(challenge, str) else challenge
        await self.push(b"334 " + (b64encode(challenge) if encode_to_b64 else challenge))
        try:
            line = await self._reader.readuntil()
        except asyncio.LimitOverrunError as error:
            await self._skip_line(error)
            await self.push("500 5.5.2 Line too long (at most 12288 octets, RFC 4954 4)")
            return MISSING
        blob = line.strip()
        if blob == b"*":
            await self.push("501 5.7.0 Auth aborted")
            return MISSING
        try:
            return b64decode(blob, validate=True)
        except Base64Error:
            await self.push("501 5.5.2 Can't decode base64")
            return MISSING

    async def _skip_line(self, error: asyncio.LimitOverrunError) -> None:
        # As aiosmtpd's command loop does with a command line too long: read on to the line's end.
        await self._reader.read(error.consumed)
        while True:
            try:
                await self._reader.readuntil()
                return
            except asyncio.LimitOverrunError as more:
                await self._reader.read(more.consumed)

    @same_help
    async def smtp_VRFY(self, arg: str) -> None:
        # aiosmtpd's echoed the argument in its reply (undecodable octets raised while encoding it).
        if await self._no_progress() or await self.check_auth_needed("VRFY"):
            return
        if not arg:
            await self.push("501 Syntax: VRFY <address>")
            return
        address, _ = self._getaddr(arg)
        if address is None:
            await self.push("501 5.1.3 Bad address syntax")
            return
        status = await self._call_handler_hook("VRFY", address)
        await self.push("252 Cannot VRFY user, but will accept message and attempt delivery"
                        if status is MISSING else status)

    @same_help
    async def smtp_RCPT(self, arg: str | None) -> None:
        if self._wants_path_check("TO:", arg) and self.envelope.mail_from:
            if arg[3:].strip().startswith("<>"):
                await self.push("501 5.1.3 Bad recipient address syntax: <> is not a recipient")
                return
            if await self._rejected_path(arg[3:], smtputf8=self.envelope.smtp_utf8):
                return
        await super().smtp_RCPT(arg)

    @same_help
    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd's DATA, with the content read in bulk (relay.smtpd.stream) instead of an await per line.
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        self.busy = True
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            try:
                content, problem = await self._reader.read_content(max_bytes=self.data_size_limit,
                                                                   max_line=self.line_length_limit,
                                                                   spool_after=settings.RELAY_SPOOL_THRESHOLD)
            except asyncio.CancelledError:  # the connection was lost during DATA
                self._writer.close()
                raise
            if problem is not None:
                self._set_post_data_state()
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)" if problem == stream.TOO_LONG
                                else "552 Error: Too much mail data")
            else:
                self.envelope.content = self.envelope.original_content = content
                status = await self._call_handler_hook("DATA")
                if isinstance(content, stream.SpooledContent):
                    content.close()  # not on a lost connection: a database thread may still be reading it
                self._set_post_data_state()
                if status is MISSING or status.startswith("250"):
                    self.junk_commands = 0
                await self.push("250 OK" if status is MISSING else status)
        finally:
            self.busy = False
        if self.relay is not None and self.relay.stopping:
            self.event("shutdown", result="closed after DATA")
            self.hang_up()


def _octets(value: str) -> bool:
    return value.isascii() and value.isdigit()
