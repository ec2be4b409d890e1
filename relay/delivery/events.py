"""Webhook events for recipients' outcomes, written by the commit that records the outcomes (attempts.py)."""

from accounts.services.webhooks import Event, events_record
from relay.models import QueuedMessage, Recipient

TYPES = {Recipient.State.DELIVERED: "message.delivered", Recipient.State.DEFERRED: "message.deferred",
         Recipient.State.BOUNCED: "message.bounced"}


def outcome_event(message: QueuedMessage, recipient: Recipient) -> Event | None:
    # Our own DSNs are not the customer's messages: their fate is not reported again.
    if message.customer_id is None or message.is_bounce or recipient.state not in TYPES:
        return None
    # As the DSN writes it (dsn.py, RFC 3464 2.3.6): "smtp; <code> <reply>", or our own reason without a code.
    diagnostic = ""
    if recipient.last_reply:
        diagnostic = f"smtp; {recipient.last_code} {recipient.last_reply}" if recipient.last_code \
            else f"X-hostingmail; {recipient.last_reply}"
    return Event(type=TYPES[recipient.state], customer_id=message.customer_id, payload={
        "message": {"id": message.pk, "queue_id": message.queue_id, "direction": message.direction,
                    "mail_from": message.mail_from, "subject": message.subject, "message_id": message.message_id},
        "recipient": recipient.address,
        "status": recipient.last_status or "", "smtp_code": recipient.last_code, "diagnostic_code": diagnostic,
        "remote_host": recipient.remote_host or "",
    })


def record_outcomes(pairs: list[tuple[QueuedMessage, Recipient]]) -> None:
    """In the caller's transaction: one event per recipient outcome for the endpoints that want it."""
    events_record([e for e in (outcome_event(m, r) for m, r in pairs) if e is not None])
