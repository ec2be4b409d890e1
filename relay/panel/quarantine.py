"""Releasing and deleting messages held in quarantine: from the quarantine page (any role that sees the message)
or through a digest's signed link (relay.delivery.quarantine). Each is audited; a release hands the message to the
normal delivery (LMTP into the inbox) and may teach rspamd it was ham."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services.audit_log import audit
from relay.delivery import quarantine
from relay.handoff import enqueue
from relay.inbound import spam
from relay.models import QueuedMessage


def _held(message: QueuedMessage) -> QueuedMessage:
    message = QueuedMessage.objects.select_for_update().get(pk=message.pk)
    if message.state != QueuedMessage.State.QUARANTINED:
        raise ValidationError(_("Message %(queue_id)s is no longer in quarantine (%(state)s).") % {
            "queue_id": message.queue_id, "state": message.get_state_display().lower()})
    return message


def quarantine_release(*, actor: User | None, message: QueuedMessage, learn: bool = False, via: str = "",
                       client_ip: str | None = None) -> str:
    """Deliver a held message to its mailboxes' inboxes; with `learn`, rspamd learns it as ham. Returns '' or why
    rspamd did not learn it (the release itself stands)."""
    with transaction.atomic():
        message = _held(message)
        # Our spam verdict goes: the released copy is filed into the inbox, not into Junk by the Sieve script.
        content = spam.strip_own_fields(bytes(message.content))
        now = timezone.now()
        QueuedMessage.objects.filter(pk=message.pk).update(
            state=QueuedMessage.State.QUEUED, content=content, size=len(content), next_attempt_at=now,
            state_reason=f"Released from quarantine{via}"[:300])
        audit(actor=actor, action="quarantine.release", obj=message, before={"state": QueuedMessage.State.QUARANTINED},
              after={"state": QueuedMessage.State.QUEUED, "learn": learn}, reason=via.strip(" ()"),
              client_ip=client_ip)
        transaction.on_commit(lambda: enqueue([message.pk]))
    return spam.learn(content, kind="ham") if learn else ""


def quarantine_delete(*, actor: User | None, message: QueuedMessage, client_ip: str | None = None) -> None:
    with transaction.atomic():
        message = _held(message)
        quarantine.discard([message.pk], reason="Deleted from quarantine")
        audit(actor=actor, action="quarantine.delete", obj=message, before={"state": QueuedMessage.State.QUARANTINED},
              after={"state": QueuedMessage.State.CANCELLED}, client_ip=client_ip)
