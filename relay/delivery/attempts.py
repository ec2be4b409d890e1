"""Delivering one queued message: claim it with a lease, send per recipient domain, record, retry or bounce.

The database is the truth. A worker claims a due message by taking its lease; a worker that dies leaves a lease
that runs out, and the next sweep hands the message to another worker. Each recipient's outcome is committed
as soon as the remote server has answered for it, so a recipient already delivered is never sent again.

The threads of one worker process claim and record together (group commit): a thread that needs the database
while another is already claiming or recording waits, and the next one does the work of all those waiting in
one transaction. SQLite has one writer for every process and thread, and a PostgreSQL commit waits for its
log flush: one transaction for eight deliveries instead of eight keeps delivery ahead of acceptance. Each thread
still returns only after its own outcome is committed.
"""

import logging
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Customer, Domain, Reseller, Status
from accounts.quotas import QuotaExceeded
from relay import sqlrows
from relay.delivery import autoreply, dkim, dsn, events, forward, lmtp, routing, smarthost
from relay.delivery.groupcommit import GroupCommit
from relay.delivery.smtpclient import ConnectFailed, ConnectionCache, Reply
from relay.eventlog import format_event
from relay.metrics import DELIVERY_OUTCOMES, DELIVERY_SECONDS
from relay.models import AutoReplyDue, DeliveryAttempt, QueuedMessage, Recipient

log = logging.getLogger("relay.delivery")

PENDING = (QueuedMessage.State.QUEUED, QueuedMessage.State.DEFERRED)
PENDING_RECIPIENTS = (Recipient.State.QUEUED, Recipient.State.DEFERRED)
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")

_cache: ConnectionCache | None = None
_MESSAGES = QueuedMessage._meta.db_table


def connection_cache() -> ConnectionCache:
    """This process's open SMTP sessions, reused by consecutive messages to the same host."""
    global _cache
    if _cache is None:
        _cache = ConnectionCache(idle_seconds=settings.DELIVERY_REUSE_SECONDS)
    return _cache


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _due(now: datetime) -> Q:
    return (Q(state__in=PENDING, next_attempt_at__lte=now)
            & (Q(lease_until__isnull=True) | Q(lease_until__lt=now)))


@dataclass(frozen=True)
class _ClaimRequest:
    message_id: int
    owner: str | None
    now: datetime | None


def _claim_batch(requests: list[_ClaimRequest]) -> list[QueuedMessage | None]:
    """Claims of several threads, per owner: the lease UPDATE (on PostgreSQL returning the messages, on SQLite
    followed by their read) and the read of their recipients."""
    groups: dict[tuple, list[int]] = {}
    for n, request in enumerate(requests):
        groups.setdefault((request.owner, request.now), []).append(n)
    results: list[QueuedMessage | None] = [None] * len(requests)
    for (owner, now), indexes in groups.items():
        ids = sorted({requests[n].message_id for n in indexes})
        claimed = {m.pk: m for m in _claim_ids(ids, owner=owner or worker_id(), now=now or timezone.now())}
        for n in indexes:
            # Two tasks for one message in one batch (the sweep's and the original): only the first gets it.
            results[n] = claimed.pop(requests[n].message_id, None)
    return results


def _claim_ids(ids: list[int], *, owner: str, now: datetime) -> list[QueuedMessage]:
    # Plain SQL: the ORM's query building cost more interpreter time than the delivery itself (see bench/delivery.py).
    adapt = connection.ops.adapt_datetimefield_value
    lease = adapt(now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS))
    listed = ", ".join(["%s"] * len(ids))
    due = (f"id IN ({listed}) AND state IN (%s, %s) AND next_attempt_at <= %s "
           f"AND (lease_until IS NULL OR lease_until < %s)")
    due_params = [*ids, *PENDING, adapt(now), adapt(now)]
    senders = (f"c.status AS customer_status, c.status_reason AS customer_reason, r.status AS reseller_status, "
               f"r.status_reason AS reseller_reason, {', '.join(f'd.{n} AS domain_{n}' for n in _DOMAIN_FIELDS)}, "
               # Whether an automatic reply waits to be sent (relay.delivery.autoreply): most messages need no query
               # of their own for it.
               f"EXISTS (SELECT 1 FROM {_table(AutoReplyDue)} a WHERE a.message_id = {{0}}.id) AS auto_reply_waits")
    joins = (f"LEFT JOIN {_table(Customer)} c ON c.id = {{0}}.customer_id LEFT JOIN {_table(Reseller)} r "
             f"ON r.id = c.reseller_id LEFT JOIN {_table(Domain)} d ON d.id = {{0}}.domain_id")
    if connection.vendor == "postgresql":
        # One statement: the lease taken on the due rows nobody else is claiming right now (skipped, not waited
        # for), and the messages with their senders' status and domains returned.
        messages = sqlrows.fetch(QueuedMessage,
            f"UPDATE {_MESSAGES} m SET lease_owner = %s, lease_until = %s FROM (SELECT id, customer_id, domain_id "
            f"FROM {_MESSAGES} WHERE {due} FOR UPDATE SKIP LOCKED) x{_lease_unflushed()} {joins.format('x')} "
            f"WHERE m.id = x.id RETURNING m.*, {senders.format('m')}", [owner, lease, *due_params])
    else:
        # SQLite has no row locks: the conditional UPDATE is atomic, and the owner it wrote says who won.
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {_MESSAGES} SET lease_owner = %s, lease_until = %s WHERE {due}",
                           [owner, lease, *due_params])
            if not cursor.rowcount:
                return []
        messages = sqlrows.fetch(QueuedMessage, f"SELECT m.*, {senders.format('m')} FROM {_MESSAGES} m "
                                                f"{joins.format('m')} WHERE m.id IN ({listed}) AND m.lease_owner = %s",
                                 [*ids, owner])
    if not messages:
        return []
    recipients: dict[int, list[Recipient]] = {}
    for recipient in sqlrows.fetch(
            Recipient, f"SELECT * FROM {_table(Recipient)} WHERE message_id IN ({', '.join(['%s'] * len(messages))}) "
                       f"ORDER BY id", [m.pk for m in messages]):
        recipients.setdefault(recipient.message_id, []).append(recipient)
    dns_status = Domain._meta.get_field("dns_status")
    for message in messages:
        message.claimed_recipients = recipients.get(message.pk, [])
        message.auto_reply_waits = bool(message.auto_reply_waits)  # SQLite says 0 or 1
        if message.domain_id:
            # What DKIM signing and smart-host routing read; the domain's other fields load if ever asked for.
            values = [getattr(message, f"domain_{name}") for name in _DOMAIN_FIELDS]
            values[_DOMAIN_FIELDS.index("dns_status")] = dns_status.from_db_value(message.domain_dns_status, None,
                                                                                 connection)
            message.domain = Domain.from_db(connection.alias, _DOMAIN_FIELDS, values)
        if message.content is not None:
            message.content = bytes(message.content)  # PostgreSQL hands out a memoryview
    return messages


def _lease_unflushed() -> str:
    """PostgreSQL: the claim's own transaction commits without waiting for its log flush (synchronous_commit off for
    that transaction alone). A lease is visible to every other worker at once all the same; what the setting risks is
    a database crash before any later commit flushes it, and then the lease is lost together with everything the
    worker recorded since, so the message is delivered again, as when the worker dies and its lease runs out
    (delivery is at least once either way). The recorded outcomes still wait for their flush. Inside a caller's
    transaction (whose commit it would relax too) nothing changes."""
    if connection.in_atomic_block or not connection.get_autocommit():
        return ""
    return " CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) unflushed"


# In the order of the model's fields, as Model.from_db wants them.
_DOMAIN_FIELDS = ["id", "name", "dkim_selector", "dkim_private_key", "dns_status", "smarthost_url"]


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _rounds() -> int:
    """Rounds of a worker process's group commit at once: two on PostgreSQL, so that the threads arriving during
    one round's flush of the log start theirs instead of waiting for it; SQLite has a single writer."""
    return 1 if connection.vendor == "sqlite" else 2


_claims = GroupCommit(_claim_batch, rounds=_rounds)


def claim(message_id: int, *, owner: str | None = None, now: datetime | None = None) -> QueuedMessage | None:
    """Take the lease on a due message, or None when it is not due or another worker holds it. The message
    comes with its recipients (`claimed_recipients`); its `lease_owner` is the owner to renew and finish with."""
    return _claims(_ClaimRequest(message_id, owner, now))


def due_message_ids(*, now: datetime | None = None, limit: int = 1000, fresh_grace: float = 60.0) -> list[int]:
    """Messages a sweep should hand to the workers: due deferred ones, expired leases, and queued ones whose
    task seems lost (still untouched `fresh_grace` seconds after they became due)."""
    now = now or timezone.now()
    untouched = Q(attempts=0, lease_until__isnull=True, next_attempt_at__gt=now - timedelta(seconds=fresh_grace))
    return list(QueuedMessage.objects.filter(_due(now)).exclude(untouched)
                .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def _customer_hold_reason(message: QueuedMessage) -> str:
    """From the customer's and reseller's status read with the claim."""
    if message.customer_status == Status.SUSPENDED:
        return f"Customer suspended: {message.customer_reason}".strip().rstrip(":")
    if message.reseller_status == Status.SUSPENDED:
        return f"Reseller suspended: {message.reseller_reason}".strip().rstrip(":")
    return ""


@dataclass
class Outcome:
    recipient: Recipient
    state: str
    code: int | None
    status: str
    reply: str
    host: str = ""
    address: str = ""


def status_of(code: int | None, text: str) -> str:
    match = _ENHANCED.match(text or "")
    if match and code and str(code)[0] == match.group(1):
        return match.group(0)
    return f"{str(code)[0]}.0.0" if code else ""


def _state_for(code: int) -> str:
    if code < 300:
        return Recipient.State.DELIVERED
    return Recipient.State.DEFERRED if code < 500 else Recipient.State.BOUNCED


def deliver_domain(message: QueuedMessage, domain: str, recipients: list[Recipient],
                   cache: ConnectionCache) -> list[Outcome]:
    """Send the message to one recipient domain: every hop in turn until one answers the transaction."""
    try:
        relay_host = smarthost.for_domain(message.domain)
        if relay_host is not None:
            hops = [routing.Hop(host=relay_host.host, address=relay_host.host, port=relay_host.port)]
        else:
            hops = routing.route(domain)
    except routing.RouteError as error:
        state = Recipient.State.BOUNCED if error.permanent else Recipient.State.DEFERRED
        return [Outcome(r, state, None, error.status, error.text) for r in recipients]
    except smarthost.SmartHostError as error:
        return [Outcome(r, Recipient.State.DEFERRED, None, "4.3.5", f"Smart host misconfigured: {error}")
                for r in recipients]
    addresses = [r.address for r in recipients]
    failures = []
    for hop in hops:
        started = time.monotonic()
        try:
            client = cache.get(host=hop.host, address=hop.address, port=hop.port, smarthost=relay_host)
            transaction_ = client.send(mail_from=message.mail_from, recipients=addresses, content=message.content)
        except ConnectFailed as error:
            failures.append(error)
            DELIVERY_SECONDS.observe(time.monotonic() - started)
            continue
        DELIVERY_SECONDS.observe(time.monotonic() - started)
        cache.put(client)
        if 400 <= transaction_.mail.code < 500:
            # The whole transaction was refused for now: another exchanger may take it (RFC 5321 5.1).
            failures.append(ConnectFailed(f"{hop.host} said {transaction_.mail.line}", transaction_.mail.code))
            continue
        outcomes = []
        for recipient in recipients:
            reply: Reply = transaction_.result(recipient.address)
            outcomes.append(Outcome(recipient, _state_for(reply.code), reply.code, status_of(reply.code, reply.text),
                                    reply.text, hop.host, hop.address))
        return outcomes
    last = failures[-1] if failures else ConnectFailed("no mail exchanger to try")
    code = last.code if last.code and 400 <= last.code < 500 else None
    host = hops[-1].host if hops else ""
    return [Outcome(r, Recipient.State.DEFERRED, code, "4.4.1" if code is None else status_of(code, last.text),
                    last.text, host) for r in recipients]


LOCAL = ""  # the recipient "domain" of hosted mailboxes: delivered over LMTP, not routed by MX


def deliver_mailboxes(message: QueuedMessage, recipients: list[Recipient]) -> list[Outcome]:
    """Hosted mailboxes, in one LMTP transaction with Dovecot."""
    started = time.monotonic()
    answers = lmtp.deliver_local(message, recipients)
    DELIVERY_SECONDS.observe(time.monotonic() - started)
    host = f"lmtp:{settings.LMTP_URL}"
    return [Outcome(r, Recipient.State.DEFERRED if code is None else _state_for(code), code,
                    "4.4.1" if code is None else status_of(code, reply), reply, host) for r, code, reply in answers]


def forward_outside(message: QueuedMessage, recipients: list[Recipient]) -> list[Outcome]:
    """An inbound message's outside recipients (aliases, catch-alls, forward copies): one outbound copy per hosted
    domain (and mailbox) that forwards them, SRS-rewritten and ARC-sealed in that domain's name and counted against
    its own sending limits (relay.delivery.forward); over a limit they wait like any temporary failure."""
    by_forwarder: dict[tuple[int | None, int | None], list[Recipient]] = {}
    for recipient in recipients:
        forwarder = (recipient.forward_domain_id or message.domain_id, recipient.forward_mailbox_id)
        by_forwarder.setdefault(forwarder, []).append(recipient)
    outcomes = []
    for (domain_id, mailbox_id), group in by_forwarder.items():
        try:
            copy = forward.forward_message(message.pk, [r.address for r in group], domain_id=domain_id,
                                           mailbox_id=mailbox_id)
        except QuotaExceeded as exceeded:
            # As the relay answers a sender over its limit (451 4.7.1): retried on the outbound schedule.
            outcomes += [Outcome(r, Recipient.State.DEFERRED, 451, "4.7.1", f"Forwarding limit reached: {exceeded}",
                                 "forward") for r in group]
            continue
        outcomes += [Outcome(r, Recipient.State.DELIVERED, 250, "2.0.0", f"Forwarded as {copy.queue_id}", "forward")
                     for r in group]
    return outcomes


@dataclass
class _Result:
    message: QueuedMessage
    outcomes: list[Outcome]
    now: datetime
    # The run's last outcomes: the message's new state is decided in the same commit.
    finish: bool = True


def _record_batch(results: list[_Result]) -> list:
    """Outcomes of several threads' deliveries in one transaction: the recipients in one executemany, the
    attempts in one INSERT, the messages that are simply delivered or deferred in one UPDATE per new state."""
    with transaction.atomic():
        _record(results)
        return _finish_batch(results)


_records = GroupCommit(_record_batch, rounds=_rounds)


def _record(results: list[_Result]) -> None:
    updates, attempts = [], []
    adapt = connection.ops.adapt_datetimefield_value
    for result in results:
        message = result.message
        for outcome in result.outcomes:
            recipient = outcome.recipient
            recipient.state = outcome.state
            recipient.last_code, recipient.last_status = outcome.code, outcome.status
            recipient.last_reply, recipient.remote_host = outcome.reply[:2000], outcome.host
            if outcome.state == Recipient.State.DELIVERED:
                recipient.delivered_at = result.now
            updates.append((recipient.state, recipient.last_code, recipient.last_status, recipient.last_reply,
                            recipient.remote_host, adapt(recipient.delivered_at), recipient.pk))
            attempts.append(DeliveryAttempt(message_id=message.pk, recipient_id=recipient.pk, started_at=result.now,
                                            remote_host=outcome.host, remote_ip=outcome.address[:45], code=outcome.code,
                                            reply=outcome.reply[:2000], outcome=outcome.state))
            DELIVERY_OUTCOMES.labels(outcome.state).inc()
            log.info(format_event({
                "event": "delivery", "queue_id": message.queue_id, "customer": message.customer_id,
                "credential": message.credential_id, "client": message.client_ip, "recipient": recipient.address,
                "remote": outcome.host, "code": outcome.code, "status": outcome.status, "result": outcome.state,
                "reply": outcome.reply[:200],
            }))
    if updates:
        # One statement run for every row: the ORM's save() per recipient costs more than the write.
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {_table(Recipient)} SET state = %s, last_code = %s, last_status = %s, "
                               f"last_reply = %s, remote_host = %s, delivered_at = %s WHERE id = %s", updates)
        sqlrows.insert(attempts)
        events.record_outcomes([(result.message, outcome.recipient) for result in results
                                for outcome in result.outcomes])


def _finish_batch(results: list[_Result]) -> list:
    states: list = []
    simple: dict[tuple, list[int]] = {}
    for result in results:
        if not result.finish:
            states.append(None)
            continue
        message, now = result.message, result.now
        recipients = message.claimed_recipients
        pending = any(r.state in PENDING_RECIPIENTS for r in recipients)
        give_up_at = message.created_at + timedelta(seconds=settings.DELIVERY_GIVE_UP_SECONDS)
        if pending and now < give_up_at:
            next_at = min(now + timedelta(seconds=retry_delay(message.attempts + 1)), give_up_at)
            simple.setdefault((message.lease_owner, QueuedMessage.State.DEFERRED, next_at), []).append(message.pk)
            states.append(QueuedMessage.State.DEFERRED)
        elif all(r.state == Recipient.State.DELIVERED for r in recipients):
            simple.setdefault((message.lease_owner, QueuedMessage.State.DELIVERED, now), []).append(message.pk)
            states.append(QueuedMessage.State.DELIVERED)
        else:
            # A give-up or a failure, and its DSN: on its own, so that its error is its message's alone.
            try:
                with transaction.atomic():
                    states.append(_finish(message, recipients, owner=message.lease_owner, now=now))
            except Exception as error:  # noqa: BLE001 -- raised in the thread of that message
                states.append(error)
    adapt = connection.ops.adapt_datetimefield_value
    for (owner, state, when), ids in simple.items():
        # Only the lease holder of a pending message changes its state (a worker that lost it changes nothing).
        column = "next_attempt_at" if state == QueuedMessage.State.DEFERRED else "finished_at"
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {_MESSAGES} SET state = %s, attempts = attempts + 1, lease_owner = '', "
                           f"lease_until = NULL, {column} = %s WHERE id IN ({', '.join(['%s'] * len(ids))}) "
                           f"AND lease_owner = %s AND state IN (%s, %s)", [state, adapt(when), *ids, owner, *PENDING])
    return states


def retry_delay(attempts: int) -> int:
    schedule = settings.DELIVERY_RETRY_SCHEDULE or [300]
    return schedule[min(max(attempts, 1), len(schedule)) - 1]


def _finish(message: QueuedMessage, recipients: list[Recipient], *, owner: str, now: datetime) -> str:
    """Done with failures: pending recipients given up, the message bounced or partly bounced, the DSN queued;
    `recipients` are all of the message's, with the outcomes of this run."""
    pending = [r for r in recipients if r.state in PENDING_RECIPIENTS]
    attempts = message.attempts + 1
    mine = QueuedMessage.objects.filter(pk=message.pk, lease_owner=owner, state__in=PENDING)
    with transaction.atomic(savepoint=False):
        for recipient in pending:  # give-up: the last temporary reason becomes a permanent failure
            recipient.state = Recipient.State.BOUNCED
            recipient.last_reply = f"Gave up after {settings.DELIVERY_GIVE_UP_SECONDS // 3600} hours: " \
                                   f"{recipient.last_reply}"[:2000]
            recipient.last_status = recipient.last_status or "4.4.7"
            recipient.save(update_fields=["state", "last_reply", "last_status"])
        delivered = [r for r in recipients if r.state == Recipient.State.DELIVERED]
        failed = [r for r in recipients if r.state == Recipient.State.BOUNCED]
        if len(delivered) == len(recipients):
            state = QueuedMessage.State.DELIVERED
        elif delivered:
            state = QueuedMessage.State.PARTIAL
        else:
            state = QueuedMessage.State.BOUNCED
        # Only the lease holder of a pending message ends it, so the DSN below is sent exactly once.
        if mine.update(state=state, attempts=attempts, finished_at=now, lease_owner="", lease_until=None) == 1:
            events.record_outcomes([(message, recipient) for recipient in pending])
            if failed and message.direction == QueuedMessage.Direction.INBOUND and not message.sender_authenticated:
                # No backscatter: a DSN goes only to a sender proven by SPF or aligned DKIM (DESIGN.md, the MX).
                log.info(format_event({"event": "dsn_suppressed", "queue_id": message.queue_id,
                                       "result": "dropped", "reason": "sender not authenticated",
                                       "recipients": len(failed)}))
            elif failed:
                message.attempts, message.state = attempts, state
                dsn.send_dsn(message=message, recipients=failed, action="failed", now=now)
    return state


def deliver(message_id: int, *, owner: str | None = None, cache: ConnectionCache | None = None,
            now: datetime | None = None) -> str | None:
    """One delivery run of a message; returns its new state, or None when it was not claimed."""
    message = claim(message_id, owner=owner, now=now)
    if message is None:
        return None
    owner = message.lease_owner
    hold = _customer_hold_reason(message)
    if hold:
        QueuedMessage.objects.filter(pk=message.pk, lease_owner=owner).update(
            state=QueuedMessage.State.HELD, state_reason=hold[:300], lease_owner="", lease_until=None)
        log.info(format_event({"event": "held", "queue_id": message.queue_id, "customer": message.customer_id,
                               "result": "held", "reason": hold}))
        return QueuedMessage.State.HELD
    if not message.dkim_signed and message.direction == QueuedMessage.Direction.OUTBOUND:
        dkim.sign_message(message)
    if message.direction == QueuedMessage.Direction.INBOUND and message.auto_reply_waits:
        autoreply.answer_due(message, now=now)
    cache = cache or connection_cache()
    by_domain: dict[str, list[Recipient]] = {}
    for recipient in message.claimed_recipients:
        if recipient.state in PENDING_RECIPIENTS:
            domain = LOCAL if recipient.mailbox_id else recipient.address.rpartition("@")[2].lower()
            by_domain.setdefault(domain, []).append(recipient)
    groups = list(by_domain.items())
    for n, (domain, recipients) in enumerate(groups):
        if n and not _renew(message, owner=owner, now=now):
            log.warning(format_event({"event": "lease_lost", "queue_id": message.queue_id, "worker": owner}))
            return None
        if domain == LOCAL:
            outcomes = deliver_mailboxes(message, recipients)
        elif message.direction == QueuedMessage.Direction.INBOUND:
            outcomes = forward_outside(message, recipients)
        else:
            outcomes = deliver_domain(message, domain, recipients, cache)
        # Each domain's outcomes committed before the next domain; the last ones with the message's new state.
        state = _records(_Result(message, outcomes, now or timezone.now(), finish=n == len(groups) - 1))
        if n == len(groups) - 1:
            return state
    return _records(_Result(message, [], now or timezone.now()))


def _renew(message: QueuedMessage, *, owner: str, now: datetime | None) -> bool:
    """Extend the lease before each remote host, so a slow but live delivery keeps its message; False when
    another worker has taken it over (this one was too slow), which must then stop."""
    lease = (now or timezone.now()) + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    return QueuedMessage.objects.filter(pk=message.pk, lease_owner=owner, state__in=PENDING).update(
        lease_until=lease) == 1
