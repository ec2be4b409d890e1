"""The MX (`manage.py runmx`): port 25 for the hosted domains, on the relay's machinery (relay.smtpd.server).

What differs from the submission relay (RFC 5321, Postfix's smtpd defaults as the reference): STARTTLS is offered
but not required (RFC 3207 4: a public MX must not insist on it), AUTH is neither advertised nor accepted, the
null sender is accepted (bounces must reach our customers), and every decision about a recipient is taken at
RCPT (relay.inbound.rules) so the MX never accepts a message it would then have to bounce.
"""

import asyncio
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from relay import eventlog, loop_reads, metrics
from relay.inbound import dnsbl, greylist, rules, senderauth, spam
from relay.inbound.accept import InboundMessage, accept_inbound, accept_inbound_on_loop
from relay.inbound.generation import GenerationReader
from relay.smtpd.protocol import HookNames, RelaySMTP, same_help
from relay.smtpd import threads
from relay.smtpd.server import Relay, RelayConfig
from relay.smtpd.tls import tls_version
from relay.submission.accept import notifier
from relay.submission.policy import Reject, size_parameter

AUTH_NOT_ENABLED = "503 5.5.1 Error: authentication not enabled"
NULL_SENDER = "<>"  # aiosmtpd's spelling of the null reverse-path in envelope.mail_from
# Sender checks of a message up to this size may run on the event loop when no DNS lookup is needed (a DKIM
# signature's body hash grows with the message).
AUTHENTICATE_ON_LOOP_BYTES = 64 * 1024
TEMPFAIL = "451 4.3.0 Temporary lookup failure, please try again later"


class MxSMTP(RelaySMTP):
    def _wants_path_check(self, keyword: str, arg: str | None) -> bool:
        # Every RCPT path is checked before aiosmtpd's parser sees it (which would drop a source route and take
        # what follows as the address); MAIL FROM is checked by the handler, which accepts the null sender.
        return bool(keyword == "TO:" and self.session.host_name and arg is not None
                    and arg[:len(keyword)].upper() == keyword)

    async def _rejected_path(self, path: str, *, smtputf8: bool) -> bool:
        try:
            rules.recipient_path(path, smtputf8=smtputf8)
        except Reject as reject:
            await self.push(reject.reply)
            return True
        return False

    @same_help
    async def smtp_AUTH(self, arg: str) -> None:
        await self.push(AUTH_NOT_ENABLED)


class MxHandler(HookNames):
    hook_prefixes = ("handle_",)

    def __init__(self, db):
        self.db = db
        self.routes = rules.RouteCache(settings.MX_RECIPIENT_CACHE_SECONDS)
        self.generations = GenerationReader(db)
        self.looking_up: dict[tuple, tuple] = {}  # recipients being looked up: (SIZE, lookup) (_look_up)
        # PostgreSQL: the accepts are written from the event loop on a connection of its own (_write_on_loop).
        self.writer = threads.loop_writer(self._write_on_loop)

    async def aclose(self) -> None:
        await self.generations.close()
        if self.writer is not None:
            await self.writer.close()

    async def _store(self, message: InboundMessage):
        # SQLite, or a large message: a write lane's thread, in a batch with the messages waiting meanwhile.
        if self.writer is None or len(message.content) > loop_reads.WRITE_ON_LOOP_BYTES:
            return await self.db.batch(accept_inbound, message, size=len(message.content))
        return await self.writer.write(message, len(message.content))

    async def _write_on_loop(self, messages: list[InboundMessage], writer: loop_reads.SharedWrites) -> list:
        """The messages that arrived while the last batch was written, in one statement sent from the event loop:
        no write lane's thread to wake and wake the loop back, nor to take turns with it for the interpreter lock
        (a batch of about five messages spent 3.5-5 ms on the thread and waited 2.7 ms more for the loop to take
        its answer; bench/README.md). A batch too large for one statement goes to a write lane's transaction."""
        stored = await accept_inbound_on_loop(messages, writer.execute)
        if stored is None:
            stored = await self.db.write(accept_inbound, messages)
        return stored

    async def prepare(self) -> None:
        """Before the MX listens: the connections every transaction uses (the event loop's for the route generation,
        a read thread's for the recipients, the write lane's for the accepts) are opened and the route generation
        read, and the delivery notices' publisher made ready — else the first sessions after a start wait for all
        of it and pay for it. A database not reachable yet is no reason not to start: RCPT answers 451 until it is,
        as it would when the database goes away later."""
        notifier.prepare()
        try:
            await self.generations.read()
            await asyncio.gather(self.db(_connected), self.db.write(_connected),
                                 *([self.writer.open()] if self.writer is not None else []))
        except DatabaseError as error:
            eventlog.event("prepare", level=logging.WARNING, result="database unavailable", error=type(error).__name__)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        kept = [line for line in responses[:-1] if not line[4:].upper().startswith("AUTH")]
        return kept + ["250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        try:
            sender = "" if address == NULL_SENDER else rules.sender_path(f"<{address}>", smtputf8=envelope.smtp_utf8)
        except Reject as reject:
            return reject.reply
        envelope.mail_from = sender or NULL_SENDER
        envelope.mail_options.extend(mail_options)
        envelope.accepted = []
        # Has where mail goes changed since the recipients were remembered? Read while the client sends its RCPT.
        envelope.route_generation = self.generations.reading()
        envelope.route_generation.add_done_callback(_retrieved)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        try:
            local, domain = rules.recipient_path(f"<{address}>", smtputf8=envelope.smtp_utf8)
            rules.check_recipient_count(len(envelope.rcpt_tos))
            address = f"{local}@{domain}"
            if address in envelope.rcpt_tos:  # a repeated recipient gets one copy
                return "250 2.1.5 Recipient OK"
            await self._check_dnsbl(server, session)
            size = size_parameter(envelope.mail_options)
            if isinstance(envelope.route_generation, asyncio.Future):  # the transaction's first RCPT
                envelope.route_generation = await asyncio.shield(envelope.route_generation)
                self.routes.follow(envelope.route_generation)
            accepted = self.routes.get(address, size)
            if accepted is None:
                accepted = await self._look_up(address, size, envelope.route_generation)
                self.routes.put(accepted, envelope.route_generation)
            if accepted.greylisting:
                sender = "" if envelope.mail_from == NULL_SENDER else envelope.mail_from
                await self.db.write(greylist.check_triplet, server.client_ip, sender, address)
        except Reject as reject:
            return reject.reply
        except DatabaseError as error:
            server.event("rcpt", result="tempfail", error=type(error).__name__)
            return TEMPFAIL
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.accepted.append(accepted)
        return "250 2.1.5 Recipient OK"

    async def _look_up(self, address: str, size: int | None, generation: int):
        """The recipient's route, batched with the other sessions' RCPTs waiting at the same moment (as AUTH lookups
        are). Sessions asking for the same address while it is looked up (a burst of one sender's messages after a
        start or a change of routes: 20 sessions, 60 lookups for 3 addresses) share the lookup, but only one begun
        under the same route generation: one begun before a change may have read the routes before it. A session
        that declared another SIZE takes the route found if its message fits, as it would from the remembered
        routes (rules.RouteCache), and looks it up with its own SIZE otherwise (messages differ in size by a few
        octets: their Message-ID, their Date)."""
        key = (address, generation)
        shared = self.looking_up.get(key)
        if shared is not None:
            asked, pending = shared
            if asked == size:
                return await asyncio.shield(pending)
            try:
                accepted = await asyncio.shield(pending)
            except Reject:
                pass  # perhaps refused only for its own SIZE (a mailbox without that much room): asked with ours
            else:
                if rules.fits(accepted, size):
                    return accepted
        pending = asyncio.ensure_future(self.db.gather(rules.check_recipients, (address, size)))
        if key not in self.looking_up:
            self.looking_up[key] = (size, pending)
        pending.add_done_callback(lambda done: self._looked_up(key, done))
        return await asyncio.shield(pending)

    def _looked_up(self, key: tuple, done: asyncio.Future) -> None:
        if self.looking_up.get(key, (None, None))[1] is done:
            del self.looking_up[key]
        _retrieved(done)  # every session that asked may have gone

    async def _check_dnsbl(self, server, session) -> None:
        # Once per session, at its first RCPT (relay.inbound.dnsbl says why there); DNS off the loop.
        if settings.MX_DNSBL_ZONES and not hasattr(session, "dnsbl_reject"):
            try:
                await asyncio.to_thread(dnsbl.check_client, server.client_ip)
                session.dnsbl_reject = None
            except Reject as reject:
                session.dnsbl_reject = reject
                server.event("rcpt", result="dnsbl", reply=reject.reply)
        if getattr(session, "dnsbl_reject", None) is not None:
            raise session.dnsbl_reject

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content
        if not isinstance(content, bytes):  # spooled to a file while it arrived (a large message): read off the loop
            content = await asyncio.to_thread(content.read)
        try:
            rules.check_loop(content)
        except Reject as reject:
            return reject.reply
        mail_from = "" if envelope.mail_from == NULL_SENDER else envelope.mail_from
        helo = session.host_name or ""
        verdict = None
        if len(content) <= AUTHENTICATE_ON_LOOP_BYTES:
            # A sender seen within its records' TTL: every answer is at hand, and the checks (0.05-0.3 ms) cost less
            # than the hop to a thread and back.
            content = senderauth.strip_own_results(content)
            verdict = senderauth.verify_at_hand(content, client_ip=server.client_ip, helo=helo, mail_from=mail_from)
        if verdict is None:  # DNS lookups (and a large message's DKIM hashes): on a thread, never on the loop
            content, verdict = await asyncio.to_thread(_authenticate, content, server.client_ip, helo, mail_from)
        # One reply covers every recipient of the transaction: refused if any recipient's domain honours p=reject
        # (a domain relaxed to "mark" gets its copy only in a transaction of its own).
        action = verdict.action_for(honour_reject=any(a.dmarc_reject for a in envelope.accepted))
        if action == "reject":
            # RFC 7489 6.7 / 10.3: refuse during the transaction rather than bounce afterwards.
            return (f"550 5.7.1 Message rejected: the DMARC policy of {verdict.from_domain} (p=reject) "
                    f"is not met by SPF or DKIM")
        checked = await spam.check_message(self.db, content, mail_from=mail_from, recipients=envelope.accepted,
                                           client_ip=server.client_ip, helo=helo)
        if checked is not None and checked.reply:
            server.event("spam", result=checked.outcome, action=checked.action, score=checked.score)
            return checked.reply
        marked = action == "quarantine" and not (checked and checked.marked)
        headers = verdict.header + ("X-Spam-Flag: YES\r\n" if marked else "") + (checked.headers if checked else "")
        message = InboundMessage(mail_from=mail_from, recipients=list(envelope.accepted), content=content,
                                 client_ip=server.client_ip, helo=helo, tls_version=tls_version(server.transport),
                                 smtputf8=envelope.smtp_utf8, auth_headers=headers,
                                 sender_authenticated=verdict.sender_authenticated, auth_results=verdict.header,
                                 spam=checked)
        try:
            stored = await self._store(message)
        except DatabaseError as error:
            server.event("accept", result="tempfail", error=type(error).__name__)
            return "451 4.3.0 Temporary failure storing the message, please try again later"
        metrics.ACCEPTED_MESSAGES.inc()
        metrics.ACCEPTED_BYTES.inc(stored.size)
        metrics.ACCEPTED_RECIPIENTS.inc(len(envelope.rcpt_tos))
        server.event("accepted", queue_id=stored.queue_id, direction="inbound", recipients=len(envelope.rcpt_tos),
                     size=stored.size, spf=verdict.spf, dkim=",".join(r for r, _ in verdict.dkim) or "none",
                     dmarc=verdict.dmarc, result="queued")
        return f"250 2.0.0 Ok: queued as {stored.queue_id}"


def _connected() -> None:
    connection.ensure_connection()


def _retrieved(future: asyncio.Future) -> None:
    # A session that ends before its RCPT never awaits the read: its failure is not worth a warning.
    if not future.cancelled():
        future.exception()


def _authenticate(content: bytes, client_ip: str, helo: str, mail_from: str):
    content = senderauth.strip_own_results(content)  # once more for a small one: nothing left to remove
    return content, senderauth.verify(content, client_ip=client_ip, helo=helo, mail_from=mail_from)


@dataclass
class MxConfig(RelayConfig):
    mx: tuple[str, int] | None = None  # port 25


class Mx(Relay):
    handler_class = MxHandler
    protocol_class = MxSMTP
    # Inbound accepts lock no quota rows, so nothing needs a second lane beside the first; one lane's batches are
    # twice as full and one thread fewer takes turns for the interpreter lock: 2.4-2.6 ms of CPU a message against
    # 3.0-3.6 with two lanes (bench/mx.py, runs alternated), the rate no lower.
    write_lanes = 1

    async def start(self) -> None:
        await self.handler.prepare()
        await super().start()

    def listeners(self):
        return [("mx", self.config.mx, False)]

    def session_options(self, implicit_tls: bool) -> dict:
        # RFC 3207 4: a publicly referenced MX must not require STARTTLS; no AUTH on port 25.
        return {"require_starttls": False, "auth_required": False, "auth_require_tls": True}
