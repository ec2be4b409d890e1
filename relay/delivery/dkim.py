"""DKIM signing (RFC 6376) with dkimpy, for domains whose DKIM record is published.

The signature is added once, when a worker first takes the message, and stored with it: every retry sends
the same signed bytes.
"""

import email.utils
import logging
from email.parser import BytesHeaderParser
from email.policy import compat32

import dkim as dkimpy

from accounts.dkim_keys import DkimKeyError, decrypt_private_key
from accounts.dnscheck import dkim_signs
from accounts.models import Domain
from relay.models import QueuedMessage

log = logging.getLogger("relay.delivery")

# What a recipient sees and what identifies the message (RFC 6376 5.4.1); Received and other trace headers
# change on the way and are left out. From is signed once more than it occurs, so another From cannot be added.
SIGNED_HEADERS = (
    b"from", b"sender", b"reply-to", b"subject", b"date", b"message-id", b"to", b"cc", b"mime-version",
    b"content-type", b"content-transfer-encoding", b"content-disposition", b"in-reply-to", b"references",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
)


def _aligned(header_from: str, domain: Domain) -> bool:
    # Sign only mail whose From is the domain or one of its subdomains: DMARC alignment (RFC 7489 3.1.1).
    addresses = [address for _, address in email.utils.getaddresses([header_from])]
    name = domain.name.lower()
    return bool(addresses) and all(
        a.rpartition("@")[2].lower() == name or a.rpartition("@")[2].lower().endswith("." + name) for a in addresses)


def sign(content: bytes, domain: Domain) -> bytes:
    """The DKIM-Signature header line (with CRLF) for this content."""
    present = {k.lower().encode() for k in BytesHeaderParser(policy=compat32).parsebytes(content).keys()}
    headers = [h for h in SIGNED_HEADERS if h in present] + [b"from"]
    private_key = decrypt_private_key(domain.dkim_private_key)  # stored encrypted; plain only for this call
    return dkimpy.sign(content, domain.dkim_selector.encode(), domain.name.encode(),
                       private_key.encode(), canonicalize=(b"relaxed", b"relaxed"),
                       include_headers=headers)


def sign_message(message: QueuedMessage) -> bool:
    """Sign and store the message when its domain publishes DKIM; True when it is signed now."""
    domain = message.domain
    if message.is_bounce or message.dkim_signed or not dkim_signs(domain) or message.content is None:
        return False
    content = bytes(message.content)
    header_from = str(BytesHeaderParser(policy=compat32).parsebytes(content).get("From", ""))
    if not _aligned(header_from, domain):
        return False
    try:
        signature = sign(content, domain)
    except (dkimpy.DKIMException, DkimKeyError):
        log.exception("DKIM signing of %s failed; sent unsigned", message.queue_id)
        return False
    message.content = signature + content
    message.size = len(message.content)
    message.dkim_signed = True
    QueuedMessage.objects.filter(pk=message.pk).update(content=message.content, size=message.size, dkim_signed=True)
    return True
