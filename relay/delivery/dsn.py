"""Delivery status notifications (RFC 3464): multipart/report to the envelope sender, from the null sender.

A message from the null sender is never answered with one (RFC 5321 6.1 / RFC 3464 2): that is how bounce
loops are avoided.
"""

import email.utils
import secrets
from datetime import datetime
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser
from email.policy import SMTP, compat32

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from relay.handoff import enqueue
from relay.metrics import BOUNCES
from relay.models import QueuedMessage, Recipient

DAEMON = "MAILER-DAEMON"


def original_headers(content: bytes | None) -> str:
    if not content:
        return ""
    end = content.find(b"\r\n\r\n")
    end = end if end >= 0 else content.find(b"\n\n")
    head = content if end < 0 else content[:end]
    return head.decode("utf-8", "replace").replace("\r\n", "\n")


def _field_block(fields: list[tuple[str, str]]) -> Message:
    block = Message()
    for name, value in fields:
        if value:
            block[name] = value
    return block


def _address_field(address: str) -> str:
    if address.isascii():
        return f"rfc822; {address}"
    # RFC 6533 3.3: a non-ASCII address in an ASCII report, with \x{HEX} for each code point beyond ASCII.
    return "utf-8; " + "".join(c if c.isascii() else f"\\x{{{ord(c):X}}}" for c in address)


def _recipient_fields(recipient: Recipient, action: str) -> list[tuple[str, str]]:
    status = recipient.last_status or ("4.0.0" if action == "delayed" else "5.0.0")
    if action == "failed" and status.startswith("2"):
        status = "5.0.0"
    fields = [("Final-Recipient", _address_field(recipient.address)), ("Action", action), ("Status", status)]
    if recipient.remote_host:
        fields.append(("Remote-MTA", f"dns; {recipient.remote_host}"))
    if recipient.last_reply:
        diagnostic = f"{recipient.last_code} {recipient.last_reply}" if recipient.last_code else recipient.last_reply
        kind = "smtp" if recipient.last_code else "X-hostingmail"
        fields.append(("Diagnostic-Code", f"{kind}; {diagnostic}".encode("ascii", "replace").decode()))
    return fields


def build(*, message: QueuedMessage, recipients: list[Recipient], action: str = "failed", reason: str = "",
          now: datetime | None = None) -> tuple[bytes, str]:
    """The DSN's bytes and its Message-ID. action is "failed" or "delayed"."""
    now = now or timezone.now()
    hostname = settings.RELAY_HOSTNAME
    context = {"message": message, "recipients": recipients, "action": action, "reason": reason,
               "hostname": hostname, "panel_title": settings.PANEL_TITLE, "support_email": settings.SUPPORT_EMAIL,
               "give_up_hours": settings.DELIVERY_GIVE_UP_SECONDS // 3600}
    template = "relay/email/bounce.txt" if action == "failed" else "relay/email/delay.txt"
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <{DAEMON}@{hostname}>"
    report["To"] = message.mail_from
    report["Subject"] = ("Undelivered Mail Returned to Sender" if action == "failed"
                         else "Delayed Mail (still being retried)")
    report["Date"] = email.utils.format_datetime(now)
    message_id = f"<{secrets.token_hex(12)}.{message.queue_id}@{hostname}>"
    report["Message-ID"] = message_id
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834: no automatic answer to this one
    report.attach(MIMEText(render_to_string(template, context), "plain", "utf-8"))

    status = Message()
    status.set_type("message/delivery-status")
    status.set_payload([
        _field_block([("Reporting-MTA", f"dns; {hostname}"), ("X-Queue-ID", message.queue_id),
                      ("Arrival-Date", email.utils.format_datetime(message.created_at))]),
        *[_field_block(_recipient_fields(r, action)) for r in recipients],
    ])
    report.attach(status)
    headers = original_headers(message.content)
    report.attach(MIMEText(headers + "\n", "rfc822-headers", "us-ascii" if headers.isascii() else "utf-8"))
    # Unfolded up to the 998-octet limit (RFC 5322 2.1.1): a folded Diagnostic-Code reads badly in most clients.
    return report.as_bytes(policy=SMTP.clone(max_line_length=998)), message_id


def send_dsn(*, message: QueuedMessage, recipients: list[Recipient], action: str = "failed", reason: str = "",
             now: datetime | None = None) -> QueuedMessage | None:
    """Queue a DSN about these recipients to the message's envelope sender; None for a null-sender message."""
    if not message.mail_from or message.is_bounce:
        return None
    now = now or timezone.now()
    content, message_id = build(message=message, recipients=recipients, action=action, reason=reason, now=now)
    headers = BytesHeaderParser(policy=compat32).parsebytes(content)
    with transaction.atomic():
        bounce = QueuedMessage.objects.create(
            customer_id=message.customer_id, mail_from="", header_from=f"{DAEMON}@{settings.RELAY_HOSTNAME}",
            subject=str(headers["Subject"]), message_id=message_id, size=len(content), content=content,
            is_bounce=True, bounce_of=message, created_at=now, next_attempt_at=now,
        )
        Recipient.objects.create(message=bounce, address=message.mail_from)
        transaction.on_commit(lambda: enqueue([bounce.pk]))
    BOUNCES.inc()
    return bounce
