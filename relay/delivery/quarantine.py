"""Messages held by the spam check (QueuedMessage state "quarantine"): the daily digest to each mailbox with a
release link per message, and the purge of those kept longer than QUARANTINE_RETENTION_DAYS. Releasing and
deleting are the panel's (relay.panel.quarantine), through the link or the quarantine page.

A release link is signed with Django's signing (salted, expiring after QUARANTINE_LINK_DAYS) and names the message
and the mailbox; it works once, since a release moves the message out of the quarantine state.
"""

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import ngettext

from accounts.languages import mailbox_language
from accounts.models import Mailbox
from relay.handoff import enqueue
from relay.models import QueuedMessage, Recipient

LINK_SALT = "relay.quarantine.release"
# Messages listed in one digest; the rest are on the panel's quarantine page.
DIGEST_MAX = 200


def release_token(*, message_id: int, mailbox_id: int) -> str:
    return signing.dumps({"m": message_id, "b": mailbox_id}, salt=LINK_SALT, compress=True)


def read_token(token: str) -> tuple[int, int]:
    """(message id, mailbox id) of a link; signing.BadSignature (SignatureExpired too) for a forged or old one."""
    data = signing.loads(token, salt=LINK_SALT, max_age=timedelta(days=settings.QUARANTINE_LINK_DAYS))
    return int(data["m"]), int(data["b"])


def discard(message_ids: list[int], *, reason: str, now: datetime | None = None) -> int:
    """Held messages deleted: their content dropped, their recipients cancelled, their log rows kept."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(QueuedMessage.objects.select_for_update().filter(
            pk__in=message_ids, state=QueuedMessage.State.QUARANTINED).values_list("pk", flat=True))
        Recipient.objects.filter(message_id__in=ids).update(state=Recipient.State.CANCELLED)
        return QueuedMessage.objects.filter(pk__in=ids).update(
            state=QueuedMessage.State.CANCELLED, content=None, purged_at=now, finished_at=now,
            state_reason=reason[:300])


def purge_quarantine(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    days = settings.QUARANTINE_RETENTION_DAYS
    old = QueuedMessage.objects.filter(state=QueuedMessage.State.QUARANTINED,
                                       created_at__lt=now - timedelta(days=days)).values_list("pk", flat=True)
    return discard(list(old[:5000]), reason=f"Deleted from quarantine after {days} days", now=now)


def _digest(mailbox: Mailbox, messages: list[QueuedMessage], now: datetime) -> tuple[bytes, str]:
    base = settings.PANEL_URL.rstrip("/")
    items = [{"message": m, "link": base + reverse("relay:quarantine_link", args=[
        release_token(message_id=m.pk, mailbox_id=mailbox.pk)])} for m in messages]
    sender = f"postmaster@{settings.MX_POSTMASTER_DOMAIN}"
    mail = EmailMessage(policy=SMTP)
    mail["From"] = f"{settings.PANEL_TITLE} <{sender}>"
    mail["To"] = mailbox.address
    # Written for a person: in the mailbox owner's language (or their customer's), unlike a DSN.
    language = mailbox_language(mailbox)
    with translation.override(language):
        mail["Subject"] = ngettext("%(count)d message held as spam for %(address)s",
                                   "%(count)d messages held as spam for %(address)s",
                                   len(messages)) % {"count": len(messages), "address": mailbox.address}
        body = render_to_string("relay/email/quarantine_digest.txt", {
            "mailbox": mailbox, "items": items, "days": settings.QUARANTINE_LINK_DAYS,
            "retention": settings.QUARANTINE_RETENTION_DAYS, "list_url": base + reverse("relay:quarantine_list")})
    mail["Date"] = format_datetime(now)
    message_id = make_msgid(domain=settings.MX_POSTMASTER_DOMAIN)
    mail["Message-ID"] = message_id
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no automatic reply to it
    mail.set_content(body)
    mail["Content-Language"] = language  # RFC 3282; after set_content, which replaces every Content-* header
    return mail.as_bytes(), message_id


def send_digests(*, now: datetime | None = None) -> int:
    """One digest per mailbox listing its messages held since its last digest; each message is listed once (the
    conditional update below makes two overlapping runs send it once)."""
    now = now or timezone.now()
    held = (Recipient.objects.filter(message__state=QueuedMessage.State.QUARANTINED, mailbox__isnull=False,
                                     message__digest_sent_at__isnull=True)
            .values_list("mailbox_id", "message_id"))
    by_mailbox: dict[int, list[int]] = {}
    for mailbox_id, message_id in held:
        by_mailbox.setdefault(mailbox_id, []).append(message_id)
    sent = 0
    listed: set[int] = set()
    with transaction.atomic():
        claimed = set(QueuedMessage.objects.select_for_update(skip_locked=True).filter(
            pk__in={m for ids in by_mailbox.values() for m in ids}, digest_sent_at__isnull=True,
            state=QueuedMessage.State.QUARANTINED).values_list("pk", flat=True))
        for mailbox in Mailbox.objects.filter(pk__in=by_mailbox).select_related("domain"):
            ids = [m for m in by_mailbox[mailbox.pk] if m in claimed][:DIGEST_MAX]
            if not ids:
                continue
            messages = list(QueuedMessage.objects.filter(pk__in=ids).defer("content").order_by("created_at"))
            content, message_id = _digest(mailbox, messages, now)
            digest = QueuedMessage.objects.create(
                customer_id=mailbox.domain.customer_id, mail_from="", header_from=f"postmaster@"
                f"{settings.MX_POSTMASTER_DOMAIN}", subject=f"Quarantine digest for {mailbox.address}"[:300],
                message_id=message_id, size=len(content), content=content, created_at=now, next_attempt_at=now)
            Recipient.objects.create(message=digest, address=mailbox.address, mailbox=mailbox)
            transaction.on_commit(lambda pk=digest.pk: enqueue([pk]))
            listed.update(ids)
            sent += 1
        QueuedMessage.objects.filter(pk__in=listed).update(digest_sent_at=now)
    return sent
