"""Accepting an inbound message durably: the message and one recipient row per hosted mailbox it goes to, in
one transaction; the MX answers 250 only after the commit (group commit with the messages that arrived
together, on the relay machinery's write lanes, as relay.submission.accept does for the relay)."""

import email.utils
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AutoReply
from relay import sqlrows
from accounts.selectors.recipients import Forwarder
from relay.inbound.rules import Accepted
from relay.inbound.spam import QUARANTINE, SpamVerdict, strip_own_fields
from relay.models import AutoReplyDue, QueuedMessage, Recipient, new_queue_id
from relay.submission.accept import notifier, parse_headers


@dataclass
class InboundMessage:
    """One message as the MX received it, its recipients resolved at RCPT."""

    mail_from: str  # '' for the null sender
    recipients: list[Accepted]
    content: bytes  # as received, our own Authentication-Results already removed
    client_ip: str
    helo: str
    tls_version: str
    smtputf8: bool = False
    # Added above the content: Authentication-Results, and X-Spam-Flag for DMARC quarantine.
    auth_headers: str = ""
    sender_authenticated: bool = False
    extra: dict = field(default_factory=dict)
    auth_results: str = ""  # our Authentication-Results field, kept for the message's detail page
    spam: SpamVerdict | None = None  # None: spam checking is off


def received_header(*, queue_id: str, message: InboundMessage, now: datetime, date: str | None = None) -> str:
    """RFC 5321 4.4; "with" per RFC 3848 (ESMTPS once TLS is up) and RFC 6531 (UTF8SMTP[S]). `date`: `now` as
    RFC 5322 spells it, when the caller has it already (a batch's messages share their time)."""
    protocol = ("UTF8SMTP" if message.smtputf8 else "ESMTP") + ("S" if message.tls_version else "")
    tls = f" ({message.tls_version})" if message.tls_version else ""
    addresses = [r.address for r in message.recipients]
    for_clause = f"\r\n\tfor <{addresses[0]}>" if len(addresses) == 1 else ""
    helo = "".join(c for c in (message.helo or "unknown") if c.isprintable() and c not in "()")[:100]
    literal = f"IPv6:{message.client_ip}" if ":" in message.client_ip else message.client_ip
    return (f"Received: from {helo} ([{literal}])\r\n\tby {settings.MAIL_MX_HOST} (hostingmail) with {protocol}{tls}"
            f" id {queue_id}{for_clause};\r\n\t{date or email.utils.format_datetime(now)}\r\n")


@dataclass
class Batch:
    """Messages ready to be stored: their rows, their recipients' rows, and the addresses that may have an automatic
    reply turned on."""

    stored: list[QueuedMessage]
    recipients: list[list[Recipient]]
    wanted: list[tuple[QueuedMessage, set[str]]]

    def queued_ids(self) -> list[int]:
        # A quarantined message waits for a release (relay.panel.quarantine); the workers are not told of it.
        return [message.pk for message in self.stored if message.state == QueuedMessage.State.QUEUED]


def accept_inbound(messages: list[InboundMessage], *, now: datetime | None = None) -> list[QueuedMessage]:
    """Store several inbound messages in one transaction (one commit for all); delivery is asked for on commit."""
    batch = prepare(messages, now=now)
    if connection.vendor != "postgresql" or not _store_in_one_statement(batch):
        with transaction.atomic():
            sqlrows.insert_with_children(batch.stored, batch.recipients, link="message_id")
            sqlrows.insert(auto_replies_due(batch.wanted))
    transaction.on_commit(lambda: notifier.submit(batch.queued_ids()))
    return batch.stored


async def accept_inbound_on_loop(messages: list[InboundMessage], execute, *, now: datetime | None = None
                                 ) -> list[QueuedMessage] | None:
    """accept_inbound on PostgreSQL from the event loop: the batch's one statement through `execute(sql, params) ->
    rows` (relay.loop_reads.SharedWrites: the loop's own connection, in autocommit, so the statement is its own
    transaction and durable when its rows arrive). None (nothing written) when the batch has more values than one
    statement takes: accept_inbound's transaction of separate statements, on a thread, stores it."""
    batch = prepare(messages, now=now)
    statement = one_statement(batch)
    if statement is None:
        return None
    sql, params = statement
    rows = await execute(sqlrows.numbered(sql), params)
    sqlrows.set_keys(batch.stored, batch.recipients, rows, key="queue_id", link="message_id")
    notifier.submit(batch.queued_ids())
    return batch.stored


def prepare(messages: list[InboundMessage], *, now: datetime | None = None) -> Batch:
    """The rows of the messages (their trace field added above the content), built without the database."""
    now = now or timezone.now()
    date = email.utils.format_datetime(now)
    stored, recipients = [], []
    for message in messages:
        queue_id = new_queue_id()
        headers = parse_headers(message.content)
        spam = message.spam
        body = message.content if spam is None else strip_own_fields(message.content)
        content = (received_header(queue_id=queue_id, message=message, now=now, date=date)
                   + message.auth_headers).encode(
            "utf-8") + body
        destinations = {}
        for accepted in message.recipients:  # a mailbox reached through two addresses gets one copy
            for mailbox in accepted.mailboxes:
                destinations.setdefault(mailbox.mailbox_id, mailbox)
        external: dict[str, Forwarder] = {}  # each outside address once, with the first hosted address's forwarder
        for accepted in message.recipients:
            for address, forwarder in zip(accepted.external, accepted.forwarders):
                external.setdefault(address, forwarder)
        # The message log shows the message under the (first) hosted domain that forwards it; each copy goes out in
        # its own forwarder's name (relay.delivery.attempts.forward_outside).
        forwarding = next((a.forwarding_domain_id for a in message.recipients if a.external), None)
        first = next(iter(destinations.values()), None)
        queued = QueuedMessage(
            queue_id=queue_id, direction=QueuedMessage.Direction.INBOUND,
            # The message log shows an inbound message to the customer of the (first) mailbox it is for.
            customer_id=first.customer_id if first else None, domain_id=forwarding,
            mail_from=message.mail_from, header_from=", ".join(headers.from_addresses)[:320],
            subject=headers.subject, message_id=headers.message_id, size=len(content), content=content,
            client_ip=message.client_ip or None, tls_version=message.tls_version,
            sender_authenticated=message.sender_authenticated, auth_results=message.auth_results.strip(),
            spam_action=spam.action if spam else "", spam_score=spam.score if spam else None,
            spam_symbols=spam.symbols if spam else {},
            state=QueuedMessage.State.QUARANTINED if spam and spam.outcome == QUARANTINE else QueuedMessage.State.QUEUED,
            created_at=now, next_attempt_at=now)
        stored.append(queued)
        recipients.append([Recipient(address=m.address, mailbox_id=m.mailbox_id) for m in destinations.values()]
                          + [Recipient(address=address, forward_domain_id=forwarder.domain_id,
                                       forward_mailbox_id=forwarder.mailbox_id)
                             for address, forwarder in external.items()])
    return Batch(stored, recipients, auto_replies_wanted(messages, stored))


def _store_in_one_statement(batch: Batch) -> bool:
    """PostgreSQL: the batch in one statement (one_statement), which commits on its own, durably, before it
    returns. False (nothing written) when the batch has more values than one statement takes."""
    statement = one_statement(batch)
    if statement is None:
        return False
    sqlrows.set_keys(batch.stored, batch.recipients, sqlrows.execute(*statement), key="queue_id", link="message_id")
    return True


def one_statement(batch: Batch) -> tuple[str, list] | None:
    """PostgreSQL: the messages, their recipients and their automatic-reply notes in one statement (data-modifying
    WITH), which commits on its own, durably, before it returns: one round trip to the database and one flush of its
    log for the batch, where a transaction of separate statements waits for the database once for each (BEGIN, each
    INSERT, the automatic replies' lookup, COMMIT), each wait on a loaded machine as long as the work. Its rows go to
    sqlrows.set_keys. None when the batch has more values than one statement takes."""
    more = [_auto_replies_part(batch)] if batch.wanted else []
    return sqlrows.one_statement(batch.stored, batch.recipients, key="queue_id", link="message_id", more=more)


def _auto_replies_part(batch: Batch) -> tuple[str, list]:
    """The automatic-reply notes of the batch, as a part of its statement's WITH (the messages inserted as `m`):
    one for each address with an automatic reply turned on, looked up by the statement itself."""
    pairs = [(queued.queue_id, address) for queued, addresses in batch.wanted for address in sorted(addresses)]
    due, replies = _table(AutoReplyDue), _table(AutoReply)
    return (f"a AS (INSERT INTO {due} (message_id, auto_reply_id) SELECT m.id, ar.id "
            f"FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS w(queue_id, address, n) "
            f"JOIN m ON m.queue_id = w.queue_id JOIN {replies} ar ON ar.address = w.address AND ar.enabled "
            f"ORDER BY w.n)", [[queue_id for queue_id, _ in pairs], [address for _, address in pairs]])


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def auto_replies_wanted(messages: list[InboundMessage],
                        stored: list[QueuedMessage]) -> list[tuple[QueuedMessage, set[str]]]:
    """For each message, the addresses it was sent to or reached (an alias's mailboxes too) that may have an
    automatic reply turned on; mail from the null sender is never answered, so it is not looked up."""
    wanted = []
    for message, queued in zip(messages, stored):
        # Held as spam: no reply to what is most likely a forged sender (released later, it is delivered unanswered).
        if message.mail_from and queued.state == QueuedMessage.State.QUEUED:
            addresses = {a.address for a in message.recipients}
            addresses.update(m.address for a in message.recipients for m in a.mailboxes)
            wanted.append((queued, addresses))
    return wanted


def auto_replies_due(wanted: list[tuple[QueuedMessage, set[str]]]) -> list[AutoReplyDue]:
    """A note for each automatic reply turned on for an address a message was sent to or reached, answered by the
    worker that delivers it (relay.delivery.autoreply). One indexed lookup for the whole batch."""
    if not wanted:
        return []
    addresses = set().union(*(addresses for _, addresses in wanted))
    found = dict(AutoReply.objects.filter(address__in=addresses, enabled=True).values_list("address", "pk"))
    return [AutoReplyDue(message=queued, auto_reply_id=found[address])
            for queued, addresses in wanted for address in sorted(addresses) if address in found]
