"""Delivery tasks. They take ids and are idempotent: the database decides who delivers what.

A task names up to DELIVERY_TASK_MESSAGES messages (those accepted together, due in one sweep): a broker round
trip, a task's bookkeeping and its acknowledgement then serve several messages instead of one. Its worker thread
delivers them in turn, each claimed only when its turn comes (a lease is never held by a message that waits); a
task that has run DELIVERY_TASK_SECONDS hands the messages it has not started to a new task, so one slow remote
server delays the others of its task by that much at most.
"""

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Status
from relay.delivery import attempts, dsn, held, quarantine
from relay.handoff import enqueue
from relay.models import QueuedMessage, Recipient

log = logging.getLogger("relay.delivery")


@shared_task(name="relay.tasks.deliver_messages", ignore_result=True)
def deliver_messages(message_ids: list[int]) -> dict[int, str | None]:
    """Deliver each message in turn; returns each one's new state (None: not claimed, or handed on)."""
    started = time.monotonic()
    states: dict[int, str | None] = {}
    failure = None
    for n, message_id in enumerate(message_ids):
        if n and time.monotonic() - started >= settings.DELIVERY_TASK_SECONDS:
            enqueue(message_ids[n:])
            break
        try:
            states[message_id] = attempts.deliver(message_id)
        except Exception as error:  # the others are still delivered; its lease brings it back later
            log.exception("delivery of message %s failed", message_id)
            states[message_id], failure = None, failure or error
    if failure is not None:
        raise failure  # the task is marked failed in the worker's log and monitoring
    return states


@shared_task(name="relay.tasks.deliver_message", ignore_result=True)
def deliver_message(message_id: int) -> str | None:
    """One message (tasks published before deliver_messages existed, or by hand)."""
    return deliver_messages([message_id])[message_id]


@shared_task(name="relay.tasks.sweep_queue", ignore_result=True)
def sweep_queue() -> int:
    """Hand due deferred messages, expired leases and messages whose task was lost to the workers; release mail
    held for customers restored since (in case the release task itself was lost); carry out hold requests whose
    task was lost."""
    held.pending_hold_requests()  # first: a leaked login's mail is held before it is handed out below
    restored = (held.suspension_holds().filter(customer__status=Status.ACTIVE)
                .values_list("customer_id", flat=True).distinct())
    for customer_id in list(restored):
        held.release_held(customer_id=customer_id)
    ids = attempts.due_message_ids()
    enqueue(ids)
    return len(ids)


@shared_task(name="relay.tasks.release_held", ignore_result=True)
def release_held(customer_id: int) -> int:
    return held.release_held(customer_id=customer_id)


@shared_task(name="relay.tasks.hold_queued", ignore_result=True)
def hold_queued(scope: str, object_id: int, reason: str, request_id: int | None = None) -> int:
    """Sent by accounts when a login that may have leaked is revoked or suspended."""
    return held.hold_queued(scope=scope, object_id=object_id, reason=reason, request_id=request_id)


@shared_task(name="relay.tasks.purge_old_messages", ignore_result=True)
def purge_old_messages() -> int:
    """Drop the content of finished messages older than MESSAGE_RETENTION_DAYS; their log rows stay."""
    now = timezone.now()
    cutoff = now - timedelta(days=settings.MESSAGE_RETENTION_DAYS)
    finished = (QueuedMessage.State.DELIVERED, QueuedMessage.State.BOUNCED, QueuedMessage.State.PARTIAL,
                QueuedMessage.State.CANCELLED)
    return (QueuedMessage.objects.filter(state__in=finished, finished_at__lt=cutoff, purged_at__isnull=True)
            .update(content=None, purged_at=now))


@shared_task(name="relay.tasks.purge_quarantine", ignore_result=True)
def purge_quarantine() -> int:
    """Delete messages held in quarantine for longer than QUARANTINE_RETENTION_DAYS (their log rows stay)."""
    return quarantine.purge_quarantine()


@shared_task(name="relay.tasks.send_quarantine_digests", ignore_result=True)
def send_quarantine_digests() -> int:
    """One digest per mailbox with messages held since its last one, with a release link for each."""
    return quarantine.send_digests()


@shared_task(name="relay.tasks.send_delay_warnings", ignore_result=True)
def send_delay_warnings() -> int:
    """One "Action: delayed" DSN per message still deferred DELIVERY_WARN_AFTER_SECONDS after it was sent."""
    if settings.DELIVERY_WARN_AFTER_SECONDS <= 0:
        return 0
    now = timezone.now()
    late = QueuedMessage.objects.filter(
        state=QueuedMessage.State.DEFERRED, warned_at__isnull=True, is_bounce=False,
        created_at__lte=now - timedelta(seconds=settings.DELIVERY_WARN_AFTER_SECONDS),
    ).exclude(Q(mail_from="")).exclude(direction=QueuedMessage.Direction.INBOUND, sender_authenticated=False)
    sent = 0
    for message in late[:500]:
        with transaction.atomic():
            # The conditional update makes concurrent sweeps send one warning, not two.
            if not QueuedMessage.objects.filter(pk=message.pk, warned_at__isnull=True).update(warned_at=now):
                continue
            recipients = list(message.recipients.filter(state=Recipient.State.DEFERRED))
            if recipients:
                dsn.send_dsn(message=message, recipients=recipients, action="delayed", now=now)
                sent += 1
    return sent
