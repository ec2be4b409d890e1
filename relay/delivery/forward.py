"""Forwarding an inbound message to external addresses (aliases, catch-alls, mailbox forward copies).

The copy goes out through the outbound queue like any sent message: a QueuedMessage of its own, counted against
the forwarding customer's sending limits, delivered and retried by the same workers. Two things make it arrive:

- the envelope sender is rewritten with SRS (accounts.srs) at the forwarding domain, so SPF passes at the
  destination (the original sender's SPF does not list us) and a bounce comes back to our MX, which routes it to
  the original sender;
- the message is ARC-sealed (RFC 8617) with the forwarding domain's DKIM key, so that the destination can trust
  our Authentication-Results when the original DKIM signature or SPF no longer aligns (DMARC).
"""

import hashlib
import logging
from email.parser import BytesHeaderParser
from email.policy import compat32

import dkim as dkimpy
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.dkim_keys import DkimKeyError, decrypt_private_key
from accounts.dnscheck import dkim_signs
from accounts.models import Domain, Mailbox, SendUsage
from accounts.quotas import Counter
from accounts.srs import srs_forward
from relay import sqlrows
from relay.handoff import enqueue
from relay.models import QueuedMessage, Recipient
from relay.submission.accept import parse_headers

log = logging.getLogger("relay.delivery")

# What the ARC-Message-Signature covers (RFC 8617 4.1.2: like DKIM's h=, what identifies the message). No
# Authentication-Results: dkimpy refuses to sign it, and the ARC-Authentication-Results carries it instead.
ARC_HEADERS = (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
               b"references", b"mime-version", b"content-type", b"content-transfer-encoding", b"dkim-signature")


def _headers(content: bytes):
    return BytesHeaderParser(policy=compat32).parsebytes(content)


def arc_seal(content: bytes, domain: Domain, *, authserv_id: str | None = None, timestamp: int | None = None,
             dnsfunc=None) -> bytes:
    """The ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results, CRLF-terminated lines) for this
    message, sealed by `domain`; b"" when the domain's DKIM key is not published (a seal nobody can verify only
    adds noise) or dkimpy cannot seal it.

    The AAR copies the Authentication-Results our MX wrote (authserv-id ARC_AUTHSERV_ID); without one the seal says
    "none". A message that already carries ARC sets gets its chain verified here when our results lack arc=.
    """
    if not dkim_signs(domain):
        return b""
    srv_id = (authserv_id or settings.ARC_AUTHSERV_ID).encode()
    prefix = b""
    parsed = _headers(content)
    ours = [v for v in parsed.get_all("Authentication-Results", []) if str(v).strip().split(";")[0].strip() == srv_id.decode()]
    has_chain = bool(parsed.get_all("ARC-Seal", []))
    if not ours:
        prefix = b"Authentication-Results: " + srv_id + b"; none\r\n"
    if has_chain and not any("arc=" in str(v) for v in ours):
        result, _, _ = dkimpy.arc_verify(content, **({"dnsfunc": dnsfunc} if dnsfunc else {}))
        prefix = b"Authentication-Results: " + srv_id + b"; arc=" + result + b"\r\n"
    present = {k.lower().encode() for k in parsed.keys()}
    include = [h for h in ARC_HEADERS if h in present]
    if b"from" not in include:
        return b""
    try:
        private_key = decrypt_private_key(domain.dkim_private_key)  # stored encrypted; plain only for this call
        lines = dkimpy.arc_sign(prefix + content, domain.dkim_selector.encode(), domain.name.encode(),
                                private_key.encode(), srv_id, include_headers=include, timestamp=timestamp)
    except (dkimpy.DKIMException, DkimKeyError):
        log.exception("ARC sealing for %s failed; forwarded without a seal", domain.name)
        return b""
    # arc_sign answers [AS, AMS, AAR]; the AAR's consolidated results replace the prefix line we added.
    return b"".join(line if line.endswith(b"\r\n") else line + b"\r\n" for line in lines)


def _forward_queue_id(message: QueuedMessage, external: list[str], domain: Domain) -> str:
    # One forward per message, destinations and forwarding domain: a retried call finds the copy it made.
    key = "\n".join([domain.name, *sorted(external)]).encode()
    return f"{message.queue_id}F{hashlib.sha1(key).hexdigest()[:6].upper()}"[:20]


def forward_message(message_id: int, external: list[str], *, domain_id: int | None = None,
                    mailbox_id: int | None = None) -> QueuedMessage | None:
    """Queue an SRS-rewritten, ARC-sealed copy of a stored message for these external addresses; returns it.

    The forwarding domain is `domain_id` (else the message's), and the copy counts against `mailbox_id`'s limits
    when a mailbox forwards (else the domain's: an alias or a catch-all), up to the customer and reseller. Over a
    limit it raises accounts.quotas.QuotaExceeded and stores nothing: the caller treats that as a temporary
    failure and calls again later. Idempotent: called again with the same arguments it returns the first copy.
    """
    external = list(dict.fromkeys(a for a in external if a))
    if not external:
        return None
    message = QueuedMessage.objects.get(pk=message_id)
    domain = Domain.objects.select_related("customer").get(pk=domain_id or message.domain_id)
    queue_id = _forward_queue_id(message, external, domain)
    existing = QueuedMessage.objects.filter(queue_id=queue_id).first()
    if existing is not None:
        return existing
    content = bytes(message.content)
    content = arc_seal(content, domain) + content
    sender = (SendUsage.Scope.MAILBOX, mailbox_id) if mailbox_id else (SendUsage.Scope.DOMAIN, domain.pk)
    now = timezone.now()
    copy = QueuedMessage(
        queue_id=queue_id, customer_id=domain.customer_id, domain_id=domain.pk, mailbox_id=mailbox_id,
        mail_from=srs_forward(message.mail_from, domain=domain.name), header_from=message.header_from,
        subject=message.subject, message_id=message.message_id, size=len(content), content=content,
        is_bounce=message.is_bounce or not message.mail_from, created_at=now, next_attempt_at=now,
    )
    try:
        queue_counted(copy, external, sender=sender, now=now)
    except IntegrityError:  # the same forward made at the same moment by another worker
        return QueuedMessage.objects.get(queue_id=queue_id)
    return copy


def queue_counted(message: QueuedMessage, addresses: list[str], *, sender: tuple[str, int], now) -> None:
    """Store an outbound message the workers made (a forward, an automatic reply) for these addresses, counted
    against `sender`'s sending limits (a SendUsage scope and id) up to the customer and reseller, in one
    transaction; QuotaExceeded stores nothing. Delivery is asked for on commit."""
    with transaction.atomic():
        counter = Counter([sender], now=now)
        counter.take(sender, len(addresses))
        sqlrows.insert([message], return_ids=True)
        sqlrows.insert([Recipient(message=message, address=address) for address in addresses])
        counter.flush()
        ids = [message.pk]
        transaction.on_commit(lambda: enqueue(ids))


def sieve_redirect(*, mailbox_address: str, recipients: list[str], content: bytes) -> QueuedMessage:
    """A copy a mailbox's Sieve script redirects (Dovecot hands it to `manage.py sieve_sendmail`, its
    sendmail_path, with the mailbox's address as envelope sender: sieve_redirect_envelope_from = orig_recipient).
    Queued like a forward, ARC-sealed, counted against the mailbox's sending limits: QuotaExceeded stores nothing
    (Dovecot then answers the delivery with a temporary failure and the worker retries it later, as a forward
    waits). Mailbox.DoesNotExist for an address that is no active hosted mailbox."""
    local, _, domain_name = mailbox_address.lower().rpartition("@")
    mailbox = Mailbox.objects.select_related("domain").get(local_part=local, domain__name=domain_name, is_active=True)
    content = b"\r\n".join(content.replace(b"\r\n", b"\n").split(b"\n"))  # sendmail's input has LF line ends
    content = arc_seal(content, mailbox.domain) + content
    headers = parse_headers(content)
    now = timezone.now()
    copy = QueuedMessage(customer_id=mailbox.domain.customer_id, domain_id=mailbox.domain_id, mailbox_id=mailbox.pk,
                         mail_from=mailbox.address, header_from=", ".join(headers.from_addresses)[:320],
                         subject=headers.subject, message_id=headers.message_id, size=len(content),
                         content=content, created_at=now, next_attempt_at=now)
    queue_counted(copy, recipients, sender=(SendUsage.Scope.MAILBOX, mailbox.pk), now=now)
    return copy
