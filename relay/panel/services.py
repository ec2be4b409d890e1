"""Support's actions on queued messages, AUTH lockouts and smart-host routes; each audited."""

from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Domain, Status, User
from accounts.services.audit_log import audit, snapshot
from relay.delivery import dsn, smarthost
from relay.handoff import enqueue
from relay.models import AuthLockout, QueuedMessage, Recipient

WAITING = (QueuedMessage.State.QUEUED, QueuedMessage.State.DEFERRED, QueuedMessage.State.HELD)


def _snapshot(message: QueuedMessage) -> dict:
    return {"state": message.state, "next_attempt_at": message.next_attempt_at.isoformat(),
            "state_reason": message.state_reason}


def _waiting(message: QueuedMessage) -> QueuedMessage:
    message = QueuedMessage.objects.select_for_update().get(pk=message.pk)
    if message.state not in WAITING:
        raise ValidationError(_("Message %(queue_id)s is %(state)s: only queued, deferred or held messages can be "
                                "retried or cancelled.") % {"queue_id": message.queue_id,
                                                            "state": message.get_state_display().lower()})
    return message


def message_retry_now(*, actor: User, message: QueuedMessage, client_ip: str | None = None) -> QueuedMessage:
    with transaction.atomic():
        message = _waiting(message)
        if message.state == QueuedMessage.State.HELD and message.customer and message.customer.status != Status.ACTIVE:
            raise ValidationError(_("The customer is suspended: the message stays held until the customer is "
                                    "restored."))
        before = _snapshot(message)
        message.next_attempt_at = timezone.now()
        if message.state == QueuedMessage.State.HELD:
            message.state = QueuedMessage.State.DEFERRED if message.attempts else QueuedMessage.State.QUEUED
            message.state_reason = ""
        message.save(update_fields=["next_attempt_at", "state", "state_reason"])
        audit(actor=actor, action="message.retry", obj=message, before=before, after=_snapshot(message),
              client_ip=client_ip)
        transaction.on_commit(lambda: enqueue([message.pk]))
    return message


def message_cancel(*, actor: User, message: QueuedMessage, bounce: bool, reason: str,
                   client_ip: str | None = None) -> QueuedMessage:
    """Stop delivering: the recipients not yet delivered are cancelled and, if `bounce`, told to the sender."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why the message is cancelled."))
    with transaction.atomic():
        message = _waiting(message)
        before = _snapshot(message)
        now = timezone.now()
        pending = list(message.recipients.filter(state__in=(Recipient.State.QUEUED, Recipient.State.DEFERRED)))
        for recipient in pending:
            recipient.state = Recipient.State.CANCELLED
            recipient.last_reply = f"Cancelled by support: {reason}"[:2000]
            recipient.last_code, recipient.last_status = None, "5.0.0"
            recipient.save(update_fields=["state", "last_reply", "last_code", "last_status"])
        message.state, message.state_reason = QueuedMessage.State.CANCELLED, reason[:300]
        message.finished_at, message.lease_owner, message.lease_until = now, "", None
        message.save(update_fields=["state", "state_reason", "finished_at", "lease_owner", "lease_until"])
        sent = None
        if bounce and pending:
            sent = dsn.send_dsn(message=message, recipients=pending, action="failed", reason=reason, now=now)
        audit(actor=actor, action="message.cancel", obj=message, before=before,
              after={**_snapshot(message), "bounce": bounce, "bounce_queue_id": sent.queue_id if sent else ""},
              reason=reason, client_ip=client_ip)
    return message


def redacted_url(url: str) -> str:
    """The URL for the audit log: never the password."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def domain_smarthost_set(*, actor: User, domain, url: str, reason: str, client_ip: str | None = None):
    """Route mail from this sender domain through a smart host (empty URL: back to MX routing)."""
    url = (url or "").strip()
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the route changes.")})
    if url:
        try:
            smarthost.parse(url)
        except smarthost.SmartHostError as error:
            raise ValidationError({"url": str(error)}) from None
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        before = {"smarthost": redacted_url(domain.smarthost_url)}
        domain.smarthost_url = url
        domain.save(update_fields=["smarthost_url"])
        audit(actor=actor, action="domain.smarthost", obj=domain, before=before,
              after={"smarthost": redacted_url(url)}, reason=reason, client_ip=client_ip)
    return domain


def lockout_lift(*, actor: User | None, lockout: AuthLockout, client_ip: str | None = None, reason: str = "",
                 now: datetime | None = None) -> AuthLockout:
    """Support lifts a lockout (and any duplicate of it); the address or username starts counting afresh."""
    if actor is not None and not actor.is_support:
        raise PermissionDenied(_("Only support staff can lift a lockout."))
    now = now or timezone.now()
    with transaction.atomic():
        lockout = AuthLockout.objects.select_for_update().get(pk=lockout.pk)
        if lockout.lifted_at is not None:
            return lockout
        before = snapshot(lockout)
        same = AuthLockout.objects.filter(kind=lockout.kind, value=lockout.value, lifted_at__isnull=True)
        same.update(lifted_at=now, lifted_by=actor if actor is not None and actor.pk else None)
        lockout.refresh_from_db()
        audit(actor=actor, action="lockout.lift", obj=lockout, before=before, after=snapshot(lockout),
              reason=reason, client_ip=client_ip)
    return lockout
