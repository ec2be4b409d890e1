"""Messages for the message log tests, written straight into relay.models as the relay and workers would."""

from datetime import datetime

from django.utils import timezone

from relay.models import DeliveryAttempt, QueuedMessage, Recipient


def make_message(tenant, *, to=("someone@example.org",), state=QueuedMessage.State.QUEUED, subject="Hello",
                 mail_from=None, created_at: datetime | None = None, recipient_state=None, via_mailbox=True,
                 **fields) -> QueuedMessage:
    mail_from = tenant.mailbox.address if mail_from is None else mail_from
    message = QueuedMessage.objects.create(
        customer=tenant.customer, domain=tenant.domain, mailbox=tenant.mailbox if via_mailbox else None,
        mail_from=mail_from, header_from=mail_from, subject=subject, size=1234, content=b"Subject: x\r\n\r\nbody\r\n",
        state=state, created_at=created_at or timezone.now(), **fields,
    )
    Recipient.objects.bulk_create(
        Recipient(message=message, address=addr, state=recipient_state or _recipient_state(state)) for addr in to
    )
    return message


def _recipient_state(state: str) -> str:
    return state if state in Recipient.State.values else Recipient.State.QUEUED


def add_attempt(message: QueuedMessage, recipient: Recipient, *, code: int, reply: str, outcome: str,
                host="mx1.example.org", ip="192.0.2.10") -> DeliveryAttempt:
    return DeliveryAttempt.objects.create(message=message, recipient=recipient, remote_host=host, remote_ip=ip,
                                          code=code, reply=reply, outcome=outcome)
