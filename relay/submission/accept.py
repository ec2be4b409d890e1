"""Accepting a message durably: the message, its recipients and its quota use in one transaction.

The relay answers 250 only after `accept_messages` returns, i.e. after the commit; delivery is asked for
on commit, and a lost broker message is harmless because the queue in the database is the truth.
"""

import email.policy
import email.utils
import queue
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import SendUsage
from accounts.quotas import Counter, QuotaExceeded
from accounts.services.webhooks import event_record
from relay import loop_reads, sqlrows
from relay.handoff import enqueue
from relay.models import QueuedMessage, Recipient, new_queue_id
from relay.submission.policy import Principal


@dataclass
class Headers:
    from_addresses: list[str] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""
    has_date: bool = False
    # Why the From: field is unacceptable (none, several, or not a list of addresses); "" when it is fine.
    from_problem: str = ""


# A header field as an MUA reads it: the name, then optional white space before the colon, which RFC 5322 4.5.3
# (obs-optional) still allows and MUAs honour. Python's parsers take "From :" for a misplaced mbox line and drop
# it, so a check through them never sees the From: a recipient is shown.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)", re.S)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def header_fields(content: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded value) of each field of the header section, in order (RFC 5322 2.2)."""
    end = _HEADER_END.search(content)
    section = content[:end.start()] if end else content
    fields: list[tuple[str, list[bytes]]] = []  # each value's lines, joined once (a long folded field stays linear)
    for line in section.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)  # unfolding removes only the line break (RFC 5322 2.2.3)
            continue
        match = _FIELD.fullmatch(line)
        if match is None:
            break  # not a field: the body starts here, as a reader sees it
        fields.append((match[1].decode("ascii").lower(), [match[2]]))
    return [(name, b"".join(lines).decode("utf-8", "replace").strip()) for name, lines in fields]


# The From: forms nearly every client writes: addr-spec, <addr-spec>, or plain words before <addr-spec>, each part a
# dot-atom (RFC 5322 3.4.1). The email package's parser reads these as the local part and domain as written, with no
# defect (tests/relay/submission/test_from_header.py holds the two to the same answers), at a hundredth of its cost
# (120 us); every other form goes to it.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_PLAIN_FROM = re.compile(rf"(?:[A-Za-z0-9]+(?:[ \t]+[A-Za-z0-9]+)*[ \t]*)?<({_DOT_ATOM})@({_DOT_ATOM})>"
                         rf"|({_DOT_ATOM})@({_DOT_ATOM})")
# A header section up to this long is read on the relay's event loop when its fields are in those plain forms
# (parse_headers(quick=True)): a few microseconds, less than handing it to a thread; anything else on a thread.
QUICK_HEADER_SECTION = 8192


def _plain_from(value: str) -> list[str] | None:
    """The address of a From: field in a plain form, else None."""
    match = _PLAIN_FROM.fullmatch(value)
    if match is None:
        return None
    local, domain = (match[1], match[2]) if match[1] is not None else (match[3], match[4])
    return [f"{local}@{domain}"]


def _from_field(values: list[str]) -> tuple[list[str], str]:
    """(addresses, problem) of the From: fields: RFC 5322 3.6 allows exactly one, a mailbox-list."""
    if not values:
        return [], ""  # no From: is refused as not owned
    if len(values) > 1:
        return [], "more than one From: header"
    plain = _plain_from(values[0])
    if plain is not None:
        return plain, ""
    try:
        header = email.policy.default.header_factory("from", values[0])
        addresses = [(a.username, a.domain) for a in header.addresses]
        groups = [group for group in header.groups if group.display_name is not None]
    except Exception:  # the header parser raises on some malformed lists instead of noting a defect
        return [], "malformed From: header"
    if header.defects or groups or not addresses or not all(local and domain for local, domain in addresses):
        return [], "malformed From: header"
    return [f"{local}@{domain}" for local, domain in addresses], ""


def _decoded(value: str | None) -> str:
    """An unstructured field's text with its encoded-words (RFC 2047) decoded."""
    if not value or "=?" not in value:  # no encoded-word: the text as it came, as the parser gives it
        return value or ""
    try:
        return str(email.policy.default.header_factory("subject", value))
    except Exception:  # malformed encoded-words: show them as they came
        return value


def parse_headers(content: bytes, *, quick: bool = False) -> Headers | None:
    """The fields the relay reads of a message. With `quick`, None unless the header section is short and its
    fields need none of the email package's parsers (a From: in a plain form, no encoded Subject:): what the event
    loop may read itself."""
    if quick and _HEADER_END.search(content[:QUICK_HEADER_SECTION + 4]) is None:
        return None
    fields = header_fields(content)
    values = {}
    for name, value in fields:
        values.setdefault(name, value)
    from_values = [value for name, value in fields if name == "from"]
    if quick and ("=?" in values.get("subject", "") or len(from_values) == 1 and _plain_from(from_values[0]) is None):
        return None
    froms, problem = _from_field(from_values)
    return Headers(
        from_addresses=froms,
        subject=_decoded(values.get("subject")).replace("\r", " ").replace("\n", " ")[:300],
        message_id=values.get("message-id", "")[:300],
        has_date="date" in values,
        from_problem=problem,
    )


def trace_headers(*, queue_id: str, helo: str, client_ip: str, tls_version: str, recipients: list[str],
                  headers: Headers, sender_domain: str, now: datetime) -> bytes:
    """Received (RFC 5321 4.4, "with ESMTPSA" per RFC 3848), and Date and Message-ID when missing (RFC 6409 8)."""
    date = email.utils.format_datetime(now)
    tls = f" ({tls_version})" if tls_version else ""
    for_clause = f"\r\n\tfor <{recipients[0]}>" if len(recipients) == 1 else ""
    helo = "".join(c for c in (helo or "unknown") if c.isprintable() and c not in "()")[:100]
    literal = f"IPv6:{client_ip}" if ":" in client_ip else client_ip  # RFC 5321 4.1.3 address literal
    lines = [f"Received: from {helo} ([{literal}])\r\n\tby {settings.RELAY_HOSTNAME} (hostingmail)"
             f" with ESMTPSA{tls} id {queue_id}{for_clause};\r\n\t{date}"]
    if not headers.has_date:
        lines.append(f"Date: {date}")
    if not headers.message_id:
        headers.message_id = f"<{secrets.token_hex(12)}.{queue_id}@{sender_domain}>"
        lines.append(f"Message-ID: {headers.message_id}")
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


class Notifier:
    """Tells the delivery workers about committed messages from a background thread.

    Publishing to the broker takes a round trip; doing it here keeps it out of the accept path (and, on SQLite,
    off the single writer thread). A notice waits up to RELAY_HANDOFF_LINGER seconds for more to join it, until a
    task's worth (DELIVERY_TASK_MESSAGES), and everything committed meanwhile goes out together, a few messages a
    task (relay.handoff.enqueue): a publish cost the relay about as much interpreter time as accepting two
    messages (bench/README.md), and each relay process publishes its own, so without the wait a second process
    doubled the publishes a message. A notice lost in a crash is harmless: the periodic sweep of queued messages
    picks the message up.
    """

    def __init__(self):
        self._queue: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Condition()
        self._pending = 0
        self._hurry = threading.Event()  # a drain under way: publish without waiting for more

    def submit(self, message_ids: list[int]) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="relay-notify", daemon=True)
                self._thread.start()
        self._queue.put(list(message_ids))

    def _gather(self) -> list[list[int]]:
        """The next notices: the first, then those that join it within the linger (a task's worth at most)."""
        batches = [self._queue.get()]
        count = len(batches[0] or ())
        deadline = time.monotonic() + settings.RELAY_HANDOFF_LINGER
        while count < settings.DELIVERY_TASK_MESSAGES and not self._hurry.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batches.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
            count += len(batches[-1] or ())
        while True:
            try:
                batches.append(self._queue.get_nowait())
            except queue.Empty:
                return batches

    def _run(self) -> None:
        while True:
            batches = [batch for batch in self._gather() if batch is not None]  # None: a drain's wake-up
            if not batches:
                continue
            try:
                enqueue([pk for batch in batches for pk in batch])
            finally:
                with self._lock:
                    self._pending -= len(batches)
                    if not self._pending:
                        self._lock.notify_all()

    def prepare(self) -> None:
        """What the first publish would otherwise do while sessions wait: the Celery app's configuration read, its
        routing, task message builder and producer pool made (the broker's transport imported). No connection is
        opened: a broker that is down costs a notice (the sweep), never a start."""
        app = current_app
        if app.conf.task_always_eager:
            return
        app.amqp.router, app.amqp.send_task_message, app.producer_pool, app.backend  # noqa: B018

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every notice submitted so far is sent (a stopping relay); False on timeout."""
        self._hurry.set()
        self._queue.put(None)  # wakes a thread waiting for more to join a notice
        try:
            with self._lock:
                return self._lock.wait_for(lambda: not self._pending, timeout)
        finally:
            self._hurry.clear()


notifier = Notifier()


@dataclass
class Submission:
    """One message as the relay received it, ready to be accepted."""

    principal: Principal
    mail_from: str
    recipients: list[str]
    content: bytes  # or an object with read() and len(): relay.smtpd.stream.SpooledContent
    client_ip: str
    helo: str
    tls_version: str
    headers: Headers | None = None

    @property
    def sender(self) -> tuple[str, int]:
        if self.principal.credential_id is not None:
            return (SendUsage.Scope.CREDENTIAL, self.principal.credential_id)
        return (SendUsage.Scope.MAILBOX, self.principal.mailbox_id)


def accept_messages(submissions: list[Submission], *, now: datetime | None = None) -> list[QueuedMessage | Exception]:
    """Store several messages and count their recipients against every sending limit, in one transaction.

    Each message is decided in turn: one over a limit gets its QuotaExceeded in the result list (nothing of it
    stored or counted), one whose sender was deleted since its AUTH the DoesNotExist, while the others are
    stored. The result is known only after the commit, so one commit
    and one flush to disk serve every message that arrived together (group commit). A database error fails
    them all: nothing is stored, and every client gets a temporary failure.
    """
    now = now or timezone.now()
    prepared = _prepare(submissions, now)
    results: list[QueuedMessage | Exception] = []
    with transaction.atomic():
        counter = Counter([submission.sender for submission in submissions], now=now)
        for submission, message in zip(submissions, prepared):
            try:
                counter.take(submission.sender, len(submission.recipients))
            except (QuotaExceeded, ObjectDoesNotExist) as refused:
                results.append(refused)
                if isinstance(refused, QuotaExceeded):
                    limit_reached(refused, customer_id=submission.principal.customer_id, now=now)
            else:
                results.append(message)
        stored = [(s, m) for s, m in zip(submissions, results) if isinstance(m, QueuedMessage)]
        if stored:
            messages = [message for _, message in stored]
            recipients = _recipients(submission for submission, _ in stored)
            # PostgreSQL: the messages, their recipients and the quota use in one statement (one wait for the
            # database instead of three), under the levels' locks taken above.
            usage = counter.pending_usage()
            if connection.vendor != "postgresql" or not sqlrows.insert_in_one_statement(
                    messages, recipients, key="queue_id", link="message_id", more=[(f"u AS ({usage[0]})", usage[1])]):
                sqlrows.insert_with_children(messages, recipients, link="message_id")
                with connection.cursor() as cursor:
                    cursor.execute(*usage)
            ids = [message.pk for message in messages]
            transaction.on_commit(lambda: notifier.submit(ids))
    return results


class _NotOnLoop(Exception):
    """A batch that accept_messages_on_loop leaves to accept_messages (its transaction rolled back)."""


async def accept_messages_on_loop(submissions: list[Submission], writer, *, now: datetime | None = None
                                  ) -> list[QueuedMessage] | None:
    """accept_messages on PostgreSQL from the event loop, in one transaction on `writer`'s connection
    (relay.loop_reads.SharedWrites): the same statements, the same locks on the quota rows until the commit, the
    same one statement for the messages, their recipients and the quota use. None (nothing written, the
    transaction rolled back) when a message is refused (over a limit, or its sender deleted since its AUTH: the
    refusal's event and its retry time are written by accept_messages, on a thread) or the batch has more values
    than one statement takes."""
    now = now or timezone.now()
    prepared = _prepare(submissions, now)

    async def transaction_(conn):
        async with conn.transaction():
            counter = await Counter.on_loop(conn, [submission.sender for submission in submissions], now=now)
            for submission in submissions:
                if not counter.take_if_room(submission.sender, len(submission.recipients)):
                    raise _NotOnLoop
            recipients = _recipients(submissions)
            usage = counter.pending_usage()
            statement = sqlrows.one_statement(prepared, recipients, key="queue_id", link="message_id",
                                              more=[(f"u AS ({usage[0]})", usage[1])])
            if statement is None:
                raise _NotOnLoop
            sql, params = statement
            returned = await loop_reads.rows(conn, sqlrows.numbered(sql), params)
            sqlrows.set_keys(prepared, recipients, returned, key="queue_id", link="message_id")

    try:
        await writer.run(transaction_)
    except _NotOnLoop:
        return None
    notifier.submit([message.pk for message in prepared])
    return prepared


def _recipients(submissions) -> list[list[Recipient]]:
    return [[Recipient(address=address) for address in submission.recipients] for submission in submissions]


def _prepare(submissions: list[Submission], now: datetime) -> list[QueuedMessage]:
    """Each message's row, its trace fields added (Received, and Date and Message-ID when missing)."""
    prepared = []
    for submission in submissions:
        body = submission.content
        if not isinstance(body, bytes):  # spooled to a file by the relay (a large message): read here, off the loop
            body = body.read()
        headers = submission.headers or parse_headers(body)
        queue_id = new_queue_id()
        sender_domain = submission.mail_from.rpartition("@")[2] or submission.principal.domain_name
        content = trace_headers(queue_id=queue_id, helo=submission.helo, client_ip=submission.client_ip,
                                tls_version=submission.tls_version, recipients=submission.recipients,
                                headers=headers, sender_domain=sender_domain, now=now) + body
        principal = submission.principal
        prepared.append(QueuedMessage(
            queue_id=queue_id, customer_id=principal.customer_id, domain_id=principal.domain_id,
            credential_id=principal.credential_id, mailbox_id=principal.mailbox_id,
            mail_from=submission.mail_from, header_from=", ".join(headers.from_addresses)[:320],
            subject=headers.subject, message_id=headers.message_id, size=len(content), content=content,
            client_ip=submission.client_ip, tls_version=submission.tls_version, created_at=now, next_attempt_at=now,
        ))
    return prepared


# Limits already reported by this process, per level, window and hour (or day): a client retrying against a full
# quota gets its 451 with no database write at all; the first refusal of each writes at most one event row (its
# dedupe key makes it one across processes) and only if an endpoint listens.
_limits_reported: set[str] = set()
_LIMITS_REPORTED_MAX = 10000


def limit_reached(exceeded: QuotaExceeded, *, customer_id: int, now: datetime) -> None:
    """Record the webhook event "sending.limit_reached", once per level and window period (in the accept's
    transaction, beside the messages it stores)."""
    level = exceeded.level
    period = now.strftime("%Y-%m-%dT%H" if exceeded.window == "hour" else "%Y-%m-%d")
    key = f"limit:{level.scope}:{level.scope_id}:{exceeded.window}:{period}"
    if key in _limits_reported:
        return
    event_record(type="sending.limit_reached", customer_id=customer_id, dedupe_key=key, now=now, payload={
        "level": level.scope, "level_id": level.scope_id, "label": level.label, "window": exceeded.window,
        "limit": exceeded.limit, "used": exceeded.used, "requested": exceeded.requested,
        "retry_at": exceeded.retry_at.isoformat() if exceeded.retry_at else None,
    })

    def remember():
        if len(_limits_reported) >= _LIMITS_REPORTED_MAX:
            _limits_reported.clear()
        _limits_reported.add(key)
    transaction.on_commit(remember)
