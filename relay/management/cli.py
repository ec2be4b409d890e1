"""What the queue and lockout commands share: looking a message or a lockout up as an operator names it, and
each as the commands print it. They act through relay.panel's services, audited as support's actions in the panel
are (the actor reads "system")."""

from django.core.management.base import CommandError
from django.utils import timezone

from relay.models import AuthLockout, QueuedMessage
from relay.submission.lockout import active_lockouts


def message_named(ident: str) -> QueuedMessage:
    """A message by its queue id (as the relay's 250 reply and the panel show it) or its database id."""
    ident = ident.strip()
    qs = QueuedMessage.objects.defer("content")
    message = qs.filter(queue_id=ident).first()
    if message is None and ident.isdigit():
        message = qs.filter(pk=int(ident)).first()
    if message is None:
        raise CommandError(f"No message {ident} in the queue.")
    return message


def message_row(message: QueuedMessage) -> dict:
    return {
        "id": message.pk, "queue_id": message.queue_id, "state": message.state,
        "customer": message.customer.name if message.customer_id else None, "mail_from": message.mail_from,
        "subject": message.subject, "recipients": getattr(message, "recipient_count", None),
        "attempts": message.attempts, "created_at": message.created_at.isoformat(),
        "next_attempt_at": message.next_attempt_at.isoformat(), "reason": message.state_reason,
    }


def lockout_named(ident: str) -> AuthLockout:
    """A lockout in force by its id, or by the client address or username it locks."""
    ident = ident.strip()
    active = active_lockouts(AuthLockout.objects.select_related("customer"))
    lockout = active.filter(pk=int(ident)).first() if ident.isdigit() else None
    if lockout is None:
        lockout = active.filter(value__iexact=ident).order_by("-locked_until").first()
    if lockout is None:
        raise CommandError(f"No lockout in force for {ident}; lockout_list shows those that are.")
    return lockout


def lockout_row(lockout: AuthLockout) -> dict:
    now = timezone.now()
    return {
        "id": lockout.pk, "kind": lockout.kind, "value": lockout.value,
        "customer": lockout.customer.name if lockout.customer_id else None, "failures": lockout.failures,
        "created_at": lockout.created_at.isoformat(), "locked_until": lockout.locked_until.isoformat(),
        "lifted_at": lockout.lifted_at.isoformat() if lockout.lifted_at else None,
        "active": lockout.lifted_at is None and lockout.locked_until > now,
    }
