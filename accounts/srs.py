"""The Sender Rewriting Scheme (SRS, srslib's Guarded scheme as libsrs2/postsrsd write it).

Mail forwarded to an external address leaves with an envelope sender at the forwarding domain, so SPF passes at the
destination: SRS0=hash=day=original-domain=original-local@forwarding-domain. A bounce to it comes back to the MX,
which checks the hash (HMAC with SRS_SECRET, compared case-insensitively) and the age (SRS_MAX_AGE_DAYS) and routes
it to the original sender; anything else is forged and refused at RCPT. Read by the MX (accounts.selectors.recipients)
and written by the workers that forward (relay.delivery.forward).
"""

import srslib
from django.conf import settings


class SrsInvalid(Exception):
    """Not an SRS address we wrote: a bad hash, an expired timestamp or no SRS form at all."""


def _srs() -> srslib.SRS:
    return srslib.SRS(settings.SRS_SECRET, prev_secrets=list(settings.SRS_PREVIOUS_SECRETS),
                      validity_days=settings.SRS_MAX_AGE_DAYS)


def is_srs_local_part(local_part: str) -> bool:
    return local_part[:5].upper() in ("SRS0=", "SRS0+", "SRS0-", "SRS1=", "SRS1+", "SRS1-")


def srs_forward(sender: str, *, domain: str) -> str:
    """The envelope sender for mail from `sender` forwarded by `domain`; the null sender stays null (RFC 5321
    4.5.5: a bounce is never bounced, so it needs no return path)."""
    local, at, sender_domain = (sender or "").rpartition("@")
    if not at or not local:
        return ""
    return _srs().forward(f"{local}@{sender_domain.lower()}", domain)


def srs_reverse(address: str) -> str:
    """The original sender of an SRS address we wrote (for SRS1, the first hop's SRS0 address); SrsInvalid if
    forged or expired."""
    local, _, _ = address.rpartition("@")
    if not is_srs_local_part(local):
        raise SrsInvalid(address)
    try:
        original = _srs().reverse(address)
    except srslib.Error as exc:
        raise SrsInvalid(str(exc)) from None
    if "@" not in original or not original.rpartition("@")[0]:
        raise SrsInvalid(address)
    return original
