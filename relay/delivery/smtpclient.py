"""SMTP client for delivery: EHLO, STARTTLS, per-recipient replies, one connection for several messages.

Timeouts follow RFC 5321 4.5.3.2: 5 minutes for the greeting, MAIL and RCPT, 2 for DATA, 3 per data block,
10 for the final dot. Connections are kept in a per-process cache keyed by destination, so consecutive
messages to the same host reuse the session (RSET between messages).
"""

import re
import select
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from relay.delivery.smarthost import SmartHost

TIMEOUT_GREETING = TIMEOUT_MAIL = TIMEOUT_RCPT = 300.0
TIMEOUT_DATA_INIT = 120.0
TIMEOUT_DATA_BLOCK = 180.0
TIMEOUT_DATA_END = 600.0
# How many messages one connection carries before it is closed and opened again.
MAX_MESSAGES_PER_CONNECTION = 100
_EOL = re.compile(rb"\r\n|\r|\n")
_DOT = re.compile(rb"(?m)^\.")


class ConnectFailed(Exception):
    """No SMTP session with this host (refused, timed out, greeting not 220, TLS failed): try the next one."""

    def __init__(self, text: str, code: int | None = None):
        super().__init__(text)
        self.text, self.code = text, code


class TlsFailed(ConnectFailed):
    """STARTTLS was offered but did not work."""


@dataclass
class Reply:
    code: int
    text: str

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


@dataclass
class Transaction:
    """Replies of one message: to MAIL, to each RCPT (by address), and to the end of DATA."""

    mail: Reply
    rcpt: dict[str, Reply] = field(default_factory=dict)
    data: Reply | None = None

    def result(self, address: str) -> Reply:
        """The reply that decides this recipient: MAIL's if it failed, its RCPT's if that failed, else DATA's."""
        if self.mail.code >= 300:
            return self.mail
        reply = self.rcpt.get(address)
        if reply is None or reply.code >= 300 or self.data is None:
            return reply or Reply(451, "4.3.0 no reply")
        return self.data


def _reply(code: int, message: bytes) -> Reply:
    return Reply(code, message.decode("utf-8", "replace").replace("\n", " ").strip())


def _tls_context(verify: bool) -> ssl.SSLContext:
    if verify:
        return ssl.create_default_context()
    # Opportunistic TLS to MXes (RFC 7435): encrypt without checking the certificate, as MTAs do.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Client:
    """One SMTP session with one address (a remote MX or a smart host)."""

    def __init__(self, *, host: str, address: str, port: int, smarthost: SmartHost | None = None):
        self.host, self.address, self.port, self.smarthost = host, address, port, smarthost
        self.smtp: smtplib.SMTP | None = None
        self.tls_version = ""
        self.messages = 0
        self.last_used = 0.0

    def connect(self) -> None:
        try:
            self._connect(plain=False)
        except TlsFailed as failed:
            # Opportunistic TLS (RFC 7435): a remote MX whose STARTTLS fails gets the message in plain text on a
            # new session rather than never; smart hosts configured for TLS never do.
            try:
                self._connect(plain=True)
            except ConnectFailed as error:
                raise ConnectFailed(f"{failed.text}; without TLS: {error.text}", error.code) from None

    def _connect(self, *, plain: bool) -> None:
        self.tls_version = ""
        helo = settings.DELIVERY_HELO_NAME
        implicit = self.smarthost is not None and self.smarthost.tls == "implicit"
        try:
            if implicit:
                smtp = smtplib.SMTP_SSL(local_hostname=helo, timeout=settings.DELIVERY_CONNECT_TIMEOUT,
                                        context=_tls_context(self.smarthost.verify))
                smtp._host = self.host  # server_hostname for SNI and certificate checks
            else:
                smtp = smtplib.SMTP(local_hostname=helo, timeout=settings.DELIVERY_CONNECT_TIMEOUT)
            code, message = smtp.connect(self.address, self.port)
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectFailed(f"connect to {self.host}[{self.address}]:{self.port}: {_describe(exc)}") from None
        self.smtp = smtp
        try:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # commands are small and lock-step
            smtp.sock.settimeout(TIMEOUT_GREETING)
            if code != 220:
                raise ConnectFailed(f"{self.host} greeted with {code} {message.decode(errors='replace')}", code)
            self._ehlo()
            if not plain:
                self._starttls()
            if self.smarthost is not None and self.smarthost.username:
                self._login()
            if implicit:
                self.tls_version = smtp.sock.version() or ""
        except ConnectFailed:
            self.close()
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise ConnectFailed(f"session with {self.host}[{self.address}]: {_describe(exc)}") from None

    def _ehlo(self) -> None:
        code, message = self.smtp.ehlo()
        if code != 250:
            code, message = self.smtp.helo()
            if code != 250:
                raise ConnectFailed(f"{self.host} refused EHLO and HELO: {code} {message.decode(errors='replace')}",
                                    code)

    def _starttls(self) -> None:
        mode = self.smarthost.tls if self.smarthost else "opportunistic"
        if mode in ("none", "implicit"):
            return
        if not self.smtp.has_extn("starttls"):
            if mode == "starttls":
                raise ConnectFailed(f"smart host {self.host} does not offer STARTTLS")
            return
        verify = self.smarthost.verify if self.smarthost else False
        self.smtp._host = self.host
        try:
            self.smtp.starttls(context=_tls_context(verify))
            self.tls_version = self.smtp.sock.version() or ""
            # With TLS 1.3 a server that dislikes the handshake may say so only now, by closing the session.
            self._ehlo()
        except (OSError, smtplib.SMTPException) as exc:
            text = f"STARTTLS with {self.host}[{self.address}] failed: {_describe(exc)}"
            if mode == "opportunistic":
                raise TlsFailed(text) from None
            raise ConnectFailed(text) from None

    def _login(self) -> None:
        try:
            self.smtp.login(self.smarthost.username, self.smarthost.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectFailed(f"smart host {self.host} refused the credentials: {exc.smtp_code} "
                                f"{exc.smtp_error.decode(errors='replace')}", exc.smtp_code) from None

    def send(self, *, mail_from: str, recipients: list[str], content: bytes) -> Transaction:
        """One message; raises ConnectFailed when the session breaks (the outcome is then unknown: retry)."""
        smtp = self.smtp
        options = []
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(content)}")
        if smtp.has_extn("8bitmime") and not content.isascii():
            options.append("BODY=8BITMIME")
        if not (mail_from + "".join(recipients)).isascii():
            if not smtp.has_extn("smtputf8"):
                # RFC 6531 3.2: without the extension the server cannot take these addresses at all.
                return Transaction(mail=Reply(553, "5.6.7 SMTPUTF8 is required, but was not offered by the host"))
            options.append("SMTPUTF8")
        try:
            smtp.sock.settimeout(TIMEOUT_MAIL)
            transaction = Transaction(mail=_reply(*smtp.mail(mail_from, options)))
            if transaction.mail.code >= 300:
                self._rset()
                return transaction
            smtp.sock.settimeout(TIMEOUT_RCPT)
            for address in recipients:
                transaction.rcpt[address] = _reply(*smtp.rcpt(address))
            if not any(r.code < 300 for r in transaction.rcpt.values()):
                self._rset()
                return transaction
            smtp.sock.settimeout(TIMEOUT_DATA_INIT)
            code, message = smtp.docmd("DATA")
            if code != 354:
                transaction.data = _reply(code, message)
                self._rset()
                return transaction
            smtp.sock.settimeout(TIMEOUT_DATA_BLOCK)
            # Content and the final dot in one write: a separate small write would wait for the peer's delayed
            # ACK (Nagle), 40 ms a message on a reused connection.
            smtp.send(dot_stuffed(content) + b".\r\n")
            smtp.sock.settimeout(TIMEOUT_DATA_END)
            transaction.data = _reply(*smtp.getreply())
        except (OSError, smtplib.SMTPException, AttributeError) as exc:
            self.close()
            raise ConnectFailed(f"session with {self.host}[{self.address}] broke: {_describe(exc)}") from None
        self.messages += 1
        self.last_used = time.monotonic()
        return transaction

    def _rset(self) -> None:
        try:
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def reusable(self) -> bool:
        """Still open and under the per-connection limit: ready for the next message.

        A server that has closed the session (or said 421 before closing) has made the socket readable; an idle,
        healthy session has nothing to read. Checking that costs no round trip, unlike a NOOP.
        """
        if self.smtp is None or self.smtp.sock is None or self.messages >= MAX_MESSAGES_PER_CONNECTION:
            return False
        try:
            readable, _, _ = select.select([self.smtp.sock], [], [], 0)
        except (OSError, ValueError):
            readable = True
        if readable:
            self.close()
            return False
        return True

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(5)
                smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            smtp.close()


def dot_stuffed(content: bytes) -> bytes:
    """CRLF line ends, a leading dot doubled (RFC 5321 4.5.2), and a final CRLF before the end-of-data dot."""
    lines = content.count(b"\r\n")
    # Counting is cheaper than two regular expressions over every message: most arrive with CRLF and no dots.
    if content.count(b"\n") != lines or content.count(b"\r") != lines:
        content = _EOL.sub(b"\r\n", content)
    if content.startswith(b".") or b"\n." in content:
        content = _DOT.sub(b"..", content)
    return content if content.endswith(b"\r\n") else content + b"\r\n"


def _describe(exc: Exception) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(exc) or exc.__class__.__name__


class ConnectionCache:
    """Idle open sessions by destination, for reuse by the next message to the same host.

    The threads of a worker delivering to one host at once each need a session of their own: every destination
    keeps up to `per_host` idle ones (the most recently used handed out first, so a quiet spell lets the others
    run out of `idle_seconds` and be closed). Thread-safe.
    """

    def __init__(self, *, idle_seconds: float, per_host: int = 16):
        self.idle_seconds = idle_seconds
        self.per_host = per_host
        self.clients: dict[tuple, list[Client]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(address: str, port: int, smarthost: SmartHost | None) -> tuple:
        return (address, port, repr(smarthost), smarthost.password if smarthost else "")

    def get(self, *, host: str, address: str, port: int, smarthost: SmartHost | None) -> Client:
        key = self._key(address, port, smarthost)
        stale, client = [], None
        with self._lock:
            idle = self.clients.get(key, [])
            now = time.monotonic()
            # Sessions idle for too long (the oldest, at the front) are closed rather than reused.
            while idle and now - idle[0].last_used > self.idle_seconds:
                stale.append(idle.pop(0))
            if idle:
                client = idle.pop()
        for old in stale:
            old.close()
        if client is not None and not client.reusable():
            client = None  # reusable() closed it
        if client is None:
            client = Client(host=host, address=address, port=port, smarthost=smarthost)
            client.connect()
        return client

    def put(self, client: Client) -> None:
        """Give a client back after a message: kept for reuse, or closed when reuse is off or enough are idle."""
        if self.idle_seconds > 0 and client.smtp is not None:
            client.last_used = time.monotonic()  # idle from now on
            with self._lock:
                idle = self.clients.setdefault(self._key(client.address, client.port, client.smarthost), [])
                if len(idle) < self.per_host:
                    idle.append(client)
                    return
        client.close()

    def close_all(self) -> None:
        with self._lock:
            clients = [client for idle in self.clients.values() for client in idle]
            self.clients.clear()
        for client in clients:
            client.close()
