"""A remote MX for delivery tests: a real aiosmtpd server on loopback that records every message it accepts.

Replies can be scripted per recipient: ``mx.replies["nobody@b.test"] = ["451 4.3.0 later", "250 ok"]`` answers
RCPT with each entry in turn (the last repeats); ``mx.slow["x@b.test"] = 30`` waits that long at RCPT.
"""

import asyncio
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.peers import free_port, wait_for_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    session: int
    tls: bool
    auth: str | None
    mail_options: list[str] = field(default_factory=list)

    @property
    def message(self):
        return message_from_bytes(self.content, policy=default)


class RecordingHandler:
    def __init__(self):
        self.messages: list[Received] = []
        self.replies: dict[str, list[str]] = {}
        self.mail_replies: list[str] = []
        self.slow: dict[str, float] = {}
        self.sessions: set[int] = set()
        self.rcpt_seen: list[str] = []  # every RCPT as it arrives, before any scripted delay
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.sessions.add(id(session))
            if self.mail_replies:
                reply = self.mail_replies.pop(0)
                if not reply.startswith("250"):
                    return reply
        envelope.mail_from, envelope.mail_options = address, mail_options
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_seen.append(address)
        delay = self.slow.get(address.lower())
        if delay:
            await asyncio.sleep(delay)
        with self.lock:
            script = self.replies.get(address.lower())
            reply = (script.pop(0) if len(script) > 1 else script[0]) if script else "250 2.1.5 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(Received(
                mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), content=envelope.original_content,
                session=id(session), tls=session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
                auth=session.auth_data.login.decode() if session.authenticated and session.auth_data else None,
                mail_options=list(envelope.mail_options or [])))
        return "250 2.0.0 Ok: queued"


@dataclass
class MX:
    port: int
    handler: RecordingHandler
    controller: Controller = field(repr=False)
    stopped: bool = False

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def replies(self):
        return self.handler.replies

    @property
    def slow(self):
        return self.handler.slow

    def delivered_to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def stop(self):
        if not self.stopped:
            self.stopped = True
            self.controller.stop()


def _authenticator(users: dict[str, str]):
    def authenticate(server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode() if auth_data.login else ""
        password = auth_data.password.decode() if auth_data.password else ""
        return AuthResult(success=users.get(login) == password and bool(login), handled=False, auth_data=auth_data)

    return authenticate


def start_mx(*, port: int | None = None, tls_context=None, users: dict[str, str] | None = None,
             implicit_tls: bool = False) -> MX:
    """Start the recording MX on 127.0.0.1; with users, AUTH is required (over TLS when tls_context).
    implicit_tls: TLS from the first byte (smtps) instead of STARTTLS."""
    handler = RecordingHandler()
    options = {}
    if tls_context is not None:
        options["ssl_context" if implicit_tls else "tls_context"] = tls_context
    if users is not None:
        options.update(authenticator=_authenticator(users), auth_required=True,
                       # aiosmtpd only counts STARTTLS as TLS; with implicit TLS the session is encrypted anyway.
                       auth_require_tls=tls_context is not None and not implicit_tls)
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), ready_timeout=10,
                            server_hostname="mx.test", **options)
    controller.start()
    return MX(port=controller.port, handler=handler, controller=controller)


class SmtpSink:
    """Postfix's smtp-sink on a free loopback port; options such as ``-f rcpt`` (5xx) or ``-r rcpt`` (4xx)."""

    def __init__(self, *options: str, dump_dir=None):
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        if not os.path.exists(binary):
            pytest.fail("smtp-sink is not installed (Debian package postfix)")
        self.port = free_port()
        self.dump_dir = dump_dir
        args = [binary, *options]
        if os.getuid() == 0:
            args += ["-u", "root"]  # smtp-sink refuses to run as root without a user to switch to
        if dump_dir is not None:
            args += ["-d", f"{dump_dir}/%M%S."]
        self.proc = subprocess.Popen([*args, f"127.0.0.1:{self.port}", "256"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_for_port(self.port, proc=self.proc)

    def dumps(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(Path(self.dump_dir).iterdir())] if self.dump_dir else []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
