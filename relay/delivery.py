"""Delivering one queued message: claim it with a lease, send per recipient domain, record, retry or bounce.

The database is the truth. A worker claims a due message by taking its lease; a worker that dies leaves a lease
that runs out, and the next sweep hands the message to another worker. Each recipient's outcome is committed
as soon as the remote server has answered for it, so a recipient already delivered is never sent again.
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

from accounts.models import Status
from relay import dkim, dsn, routing, smarthost
from relay.metrics import DELIVERY_OUTCOMES, DELIVERY_SECONDS
from relay.models import DeliveryAttempt, QueuedMessage, Recipient
from relay.relaylog import format_event
from relay.smtpclient import ConnectFailed, ConnectionCache, Reply

log = logging.getLogger("relay.delivery")

PENDING = (QueuedMessage.State.QUEUED, QueuedMessage.State.DEFERRED)
PENDING_RECIPIENTS = (Recipient.State.QUEUED, Recipient.State.DEFERRED)
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")

_cache: ConnectionCache | None = None


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


def claim(message_id: int, *, owner: str, now: datetime | None = None) -> QueuedMessage | None:
    """Take the lease on a due message, or None when it is not due or another worker holds it."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    if connection.vendor == "postgresql":
        with transaction.atomic():
            message = (QueuedMessage.objects.select_for_update(skip_locked=True, of=("self",))
                       .select_related("customer__reseller", "domain").filter(_due(now), pk=message_id).first())
            if message is None:
                return None
            message.lease_owner, message.lease_until = owner, lease
            message.save(update_fields=["lease_owner", "lease_until"])
            return message
    # SQLite has no row locks: the conditional UPDATE is atomic, and its row count says who won.
    if not QueuedMessage.objects.filter(_due(now), pk=message_id).update(lease_owner=owner, lease_until=lease):
        return None
    return QueuedMessage.objects.select_related("customer__reseller", "domain").get(pk=message_id)


def due_message_ids(*, now: datetime | None = None, limit: int = 1000, fresh_grace: float = 60.0) -> list[int]:
    """Messages a sweep should hand to the workers: due deferred ones, expired leases, and queued ones whose
    task seems lost (still untouched `fresh_grace` seconds after they became due)."""
    now = now or timezone.now()
    untouched = Q(attempts=0, lease_until__isnull=True, next_attempt_at__gt=now - timedelta(seconds=fresh_grace))
    return list(QueuedMessage.objects.filter(_due(now)).exclude(untouched)
                .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def _customer_hold_reason(message: QueuedMessage) -> str:
    customer = message.customer
    if customer is None:
        return ""
    if customer.status == Status.SUSPENDED:
        return f"Customer suspended: {customer.status_reason}".strip().rstrip(":")
    if customer.reseller_id and customer.reseller.status == Status.SUSPENDED:
        return f"Reseller suspended: {customer.reseller.status_reason}".strip().rstrip(":")
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


def _record(message: QueuedMessage, outcomes: list[Outcome], now: datetime) -> None:
    with transaction.atomic(savepoint=False):
        attempts = []
        for outcome in outcomes:
            recipient = outcome.recipient
            recipient.state = outcome.state
            recipient.last_code, recipient.last_status = outcome.code, outcome.status
            recipient.last_reply, recipient.remote_host = outcome.reply[:2000], outcome.host
            if outcome.state == Recipient.State.DELIVERED:
                recipient.delivered_at = now
            recipient.save(update_fields=["state", "last_code", "last_status", "last_reply", "remote_host",
                                          "delivered_at"])
            attempts.append(DeliveryAttempt(message=message, recipient=recipient, started_at=now,
                                            remote_host=outcome.host, remote_ip=outcome.address[:45],
                                            code=outcome.code, reply=outcome.reply[:2000], outcome=outcome.state))
            DELIVERY_OUTCOMES.labels(outcome.state).inc()
            log.info(format_event({
                "event": "delivery", "queue_id": message.queue_id, "customer": message.customer_id,
                "credential": message.credential_id, "client": message.client_ip, "recipient": recipient.address,
                "remote": outcome.host, "code": outcome.code, "status": outcome.status, "result": outcome.state,
                "reply": outcome.reply[:200],
            }))
        DeliveryAttempt.objects.bulk_create(attempts)


def retry_delay(attempts: int) -> int:
    schedule = settings.DELIVERY_RETRY_SCHEDULE or [300]
    return schedule[min(max(attempts, 1), len(schedule)) - 1]


def _finish(message: QueuedMessage, recipients: list[Recipient], *, owner: str, now: datetime) -> str:
    """Deferred with the next attempt time, or done (and the DSN queued); `recipients` are all of the message's,
    with the outcomes of this run."""
    give_up_at = message.created_at + timedelta(seconds=settings.DELIVERY_GIVE_UP_SECONDS)
    pending = [r for r in recipients if r.state in PENDING_RECIPIENTS]
    attempts = message.attempts + 1
    mine = QueuedMessage.objects.filter(pk=message.pk, lease_owner=owner, state__in=PENDING)
    if pending and now < give_up_at:
        next_at = min(now + timedelta(seconds=retry_delay(attempts)), give_up_at)
        mine.update(state=QueuedMessage.State.DEFERRED, attempts=attempts, next_attempt_at=next_at,
                    lease_owner="", lease_until=None)
        return QueuedMessage.State.DEFERRED
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
            if failed:
                message.attempts, message.state = attempts, state
                dsn.send_dsn(message=message, recipients=failed, action="failed", now=now)
    return state


def deliver(message_id: int, *, owner: str | None = None, cache: ConnectionCache | None = None,
            now: datetime | None = None) -> str | None:
    """One delivery run of a message; returns its new state, or None when it was not claimed."""
    owner = owner or worker_id()
    message = claim(message_id, owner=owner, now=now)
    if message is None:
        return None
    hold = _customer_hold_reason(message)
    if hold:
        QueuedMessage.objects.filter(pk=message.pk, lease_owner=owner).update(
            state=QueuedMessage.State.HELD, state_reason=hold[:300], lease_owner="", lease_until=None)
        log.info(format_event({"event": "held", "queue_id": message.queue_id, "customer": message.customer_id,
                               "result": "held", "reason": hold}))
        return QueuedMessage.State.HELD
    if not message.dkim_signed:
        dkim.sign_message(message)
    message.content = bytes(message.content)  # PostgreSQL hands out a memoryview
    cache = cache or connection_cache()
    everyone = list(message.recipients.all())
    by_domain: dict[str, list[Recipient]] = {}
    for recipient in everyone:
        if recipient.state in PENDING_RECIPIENTS:
            by_domain.setdefault(recipient.address.rpartition("@")[2].lower(), []).append(recipient)
    groups = list(by_domain.items())
    for n, (domain, recipients) in enumerate(groups):
        if n and not _renew(message, owner=owner, now=now):
            log.warning(format_event({"event": "lease_lost", "queue_id": message.queue_id, "worker": owner}))
            return None
        outcomes = deliver_domain(message, domain, recipients, cache)
        if n < len(groups) - 1:
            _record(message, outcomes, now or timezone.now())
            continue
        # The last outcomes and the message's new state in one commit.
        with transaction.atomic():
            _record(message, outcomes, now or timezone.now())
            return _finish(message, everyone, owner=owner, now=now or timezone.now())
    return _finish(message, everyone, owner=owner, now=now or timezone.now())


def _renew(message: QueuedMessage, *, owner: str, now: datetime | None) -> bool:
    """Extend the lease before each remote host, so a slow but live delivery keeps its message; False when
    another worker has taken it over (this one was too slow), which must then stop."""
    lease = (now or timezone.now()) + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    return QueuedMessage.objects.filter(pk=message.pk, lease_owner=owner, state__in=PENDING).update(
        lease_until=lease) == 1
