"""Automatic replies (vacation) of mailboxes and aliases, sent by the worker that delivers the inbound message.

The MX notes, in the transaction that stores a message, which of its recipients have an automatic reply on
(relay.models.AutoReplyDue); the worker answers when it delivers the message, through the outbound queue like any
sent message: counted against the mailbox's (an alias: its domain's) sending limits, signed with the domain's DKIM
key and shown in the message log. Never answered (RFC 3834 2 and 3.1, RFC 5230 4.5-4.6): the null sender;
messages marked Auto-Submitted (anything but "no"), Precedence bulk/list/junk, or carrying List-* headers
(mailing lists); mail from the reply's own addresses or from system senders (MAILER-DAEMON, owner-*, *-request,
our own host names); and a sender already answered within the reply's interval_days.
"""

import email.utils
import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AutoReply, AutoReplySent, SendUsage
from accounts.quotas import QuotaExceeded
from relay.delivery.forward import queue_counted
from relay.eventlog import format_event
from relay.models import AutoReplyDue, QueuedMessage, new_queue_id

log = logging.getLogger("relay.delivery")

_LIST_PRECEDENCE = {"bulk", "list", "junk"}
_SYSTEM_LOCAL_PARTS = {"mailer-daemon", "postmaster", "listserv", "majordomo", "noreply", "no-reply"}


def skip_reason(*, sender: str, headers, auto_reply: AutoReply, own_addresses: set[str]) -> str:
    """Why this message gets no automatic reply ('' when it gets one)."""
    if not sender:
        return "null sender"
    auto_submitted = str(headers.get("Auto-Submitted", "no")).split(";")[0].strip().lower()
    if auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    if str(headers.get("Precedence", "")).strip().lower() in _LIST_PRECEDENCE:
        return "Precedence: " + str(headers.get("Precedence")).strip().lower()
    if any(name.lower().startswith("list-") for name in headers.keys()):
        return "mailing list"
    sender = sender.lower()
    local, _, domain = sender.rpartition("@")
    if sender in own_addresses:
        return "own address"
    if (local in _SYSTEM_LOCAL_PARTS or local.startswith("owner-") or local.endswith("-request")
            or domain in {settings.RELAY_HOSTNAME.lower(), settings.MAIL_MX_HOST.lower()}):
        return "system sender"
    return ""


def reply_content(*, auto_reply: AutoReply, to: str, headers, now: datetime) -> bytes:
    """The reply (RFC 3834 3.1): Auto-Submitted: auto-replied, In-Reply-To and References to the message."""
    reply = EmailMessage()
    reply["From"] = auto_reply.address
    reply["To"] = to
    reply["Subject"] = auto_reply.subject
    reply["Date"] = email.utils.format_datetime(now)
    reply["Message-ID"] = email.utils.make_msgid(domain=auto_reply.address.rpartition("@")[2])
    reply["Auto-Submitted"] = "auto-replied"
    original_id = str(headers.get("Message-ID", "")).strip()
    if original_id:
        reply["In-Reply-To"] = original_id
        reply["References"] = " ".join(filter(None, [str(headers.get("References", "")).strip(), original_id]))
    reply.set_content(auto_reply.body.replace("\r\n", "\n"))
    return reply.as_bytes(policy=reply.policy.clone(linesep="\r\n"))


def answer_due(message: QueuedMessage, *, now: datetime | None = None) -> list[QueuedMessage]:
    """Send the automatic replies noted for this inbound message; each note is taken once (deleted in the
    transaction that queues its reply), so a delivery retried or run twice answers once."""
    now = now or timezone.now()
    sent = []
    for due in AutoReplyDue.objects.filter(message_id=message.pk).select_related(
            "auto_reply__mailbox__domain", "auto_reply__alias__domain"):
        with transaction.atomic():
            if not AutoReplyDue.objects.filter(pk=due.pk).delete()[0]:
                continue  # another worker took it
            reply = _answer(message, due.auto_reply, now=now)
        if reply is not None:
            sent.append(reply)
    return sent


def _answer(message: QueuedMessage, auto_reply: AutoReply, *, now: datetime) -> QueuedMessage | None:
    headers = BytesHeaderParser(policy=compat32).parsebytes(bytes(message.content or b""), headersonly=True)
    owner = auto_reply.owner
    own = {auto_reply.address.lower(), owner.address.lower()}
    reason = "" if auto_reply.active_on(timezone.localdate(now)) else "not active today"
    reason = reason or skip_reason(sender=message.mail_from, headers=headers, auto_reply=auto_reply,
                                   own_addresses=own)
    sender = message.mail_from.lower()
    if not reason:
        last = (AutoReplySent.objects.select_for_update().filter(auto_reply=auto_reply, sender=sender)
                .values_list("sent_at", flat=True).first())
        if last is not None and last > now - timedelta(days=auto_reply.interval_days):
            reason = f"answered within {auto_reply.interval_days} days"
    if reason:
        log.info(format_event({"event": "auto_reply", "queue_id": message.queue_id, "result": "skipped",
                               "reason": reason}))
        return None
    domain = owner.domain
    content = reply_content(auto_reply=auto_reply, to=message.mail_from, headers=headers, now=now)
    # RFC 3834 3.3: sent from the null sender, so that nothing answers the answer.
    reply = QueuedMessage(queue_id=new_queue_id(), customer_id=domain.customer_id, domain_id=domain.pk,
                          mailbox_id=auto_reply.mailbox_id, mail_from="", header_from=auto_reply.address,
                          subject=auto_reply.subject[:300], size=len(content), content=content,
                          created_at=now, next_attempt_at=now)
    scope = ((SendUsage.Scope.MAILBOX, auto_reply.mailbox_id) if auto_reply.mailbox_id
             else (SendUsage.Scope.DOMAIN, domain.pk))
    try:
        with transaction.atomic():
            queue_counted(reply, [message.mail_from], sender=scope, now=now)
    except QuotaExceeded as exceeded:
        log.info(format_event({"event": "auto_reply", "queue_id": message.queue_id, "result": "over_limit",
                               "reason": str(exceeded)}))
        return None
    AutoReplySent.objects.update_or_create(auto_reply=auto_reply, sender=sender, defaults={"sent_at": now})
    log.info(format_event({"event": "auto_reply", "queue_id": message.queue_id, "result": "queued",
                           "reply": reply.queue_id}))
    return reply
