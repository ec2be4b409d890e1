"""Greylisting (per domain, Domain.greylisting; off by default), at RCPT: the first message from a (client
network, sender, recipient) triplet is refused with 451 4.7.1 and taken when it is sent again after
MX_GREYLIST_DELAY seconds. Real MTAs retry; much spam software does not. The cost, which the domain's page
states: a first message from a new sender arrives minutes late (as late as the sender's retry schedule), and a
sender that never retries is lost.

The triplet is kept in the database (relay.models.GreylistEntry), so every MX process and machine agrees; the
client's /24 (IPv4) or /64 (IPv6) stands for the client, because large senders retry from another address of
the same pool. A triplet that passed is remembered for MX_GREYLIST_EXPIRE_DAYS after its last message; one that
was never retried is forgotten after MX_GREYLIST_RETRY_WINDOW seconds. The beat task purges both.
"""

import hashlib
import ipaddress
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from relay.models import GreylistEntry
from relay.submission.policy import Reject


def client_network(client_ip: str) -> str:
    address = ipaddress.ip_address(client_ip)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def triplet_key(client_ip: str, sender: str, recipient: str) -> str:
    text = "\0".join([client_network(client_ip), sender.lower(), recipient.lower()])
    return hashlib.sha256(text.encode()).hexdigest()


def _refusal(wait: float) -> Reject:
    # RFC 5321 4.2.5 / RFC 6647 (greylisting): a temporary failure at RCPT; the sender's MTA retries.
    return Reject(f"451 4.7.1 Greylisted: please try again in {max(int(wait), 1)} seconds", "greylisted")


def check_triplet(client_ip: str, sender: str, recipient: str, *, now: datetime | None = None) -> None:
    """Reject with 451 unless this triplet was first seen at least MX_GREYLIST_DELAY seconds ago (and within
    the retry window); a triplet that passes is kept for MX_GREYLIST_EXPIRE_DAYS."""
    now = now or timezone.now()
    key = triplet_key(client_ip, sender, recipient)
    delay = timedelta(seconds=settings.MX_GREYLIST_DELAY)
    entry = GreylistEntry.objects.filter(triplet=key).first()
    if entry is None or entry.expires_at <= now:
        first = {"first_seen": now, "pass_after": now + delay, "passed": False,
                 "expires_at": now + timedelta(seconds=settings.MX_GREYLIST_RETRY_WINDOW)}
        try:
            with transaction.atomic():
                if entry is None:
                    GreylistEntry.objects.create(triplet=key, **first)
                else:
                    GreylistEntry.objects.filter(pk=entry.pk, expires_at=entry.expires_at).update(**first)
        except IntegrityError:  # another MX process saw it at the same moment: refused all the same
            pass
        raise _refusal(delay.total_seconds())
    if now < entry.pass_after:
        raise _refusal((entry.pass_after - now).total_seconds())
    expires = now + timedelta(days=settings.MX_GREYLIST_EXPIRE_DAYS)
    # Renewed at most once a day: a known sender's every message would otherwise be a write on the MX.
    if not entry.passed or entry.expires_at < expires - timedelta(days=1):
        GreylistEntry.objects.filter(pk=entry.pk).update(passed=True, expires_at=expires)


def purge_expired(*, now: datetime | None = None) -> int:
    return GreylistEntry.objects.filter(expires_at__lte=now or timezone.now()).delete()[0]
