"""Where mail for one address at a hosted domain goes: read by the MX at RCPT, before anything is accepted.

Every refusal is decided here, at RCPT, so the MX never accepts a message it would then have to bounce.
"""

from dataclasses import dataclass

from accounts.models import Domain, Mailbox, Status

MIB = 1024 * 1024


@dataclass(frozen=True)
class Route:
    """Where mail for one RCPT address goes."""

    mailbox_ids: tuple[int, ...]  # hosted mailboxes (delivered over LMTP)
    external: tuple[str, ...] = ()  # external addresses (forwarded through the outbound queue)


class RecipientRefused(Exception):
    """`reply` is the full SMTP reply line, e.g. "550 5.1.1 <x@y>: User unknown"."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


def resolve_recipient(address: str) -> Route:
    """The route for `local@domain` (domain as its A-label), or RecipientRefused with the reply to give."""
    local, _, domain_name = address.rpartition("@")
    local, domain_name = local.lower(), domain_name.lower()
    # The common case, an existing mailbox, in one query with its domain and owners.
    mailbox = (Mailbox.objects.select_related("domain__customer__reseller")
               .filter(domain__name=domain_name, local_part=local)
               .only("id", "is_active", "quota_mb", "used_bytes", "domain__status", "domain__verified_at",
                     "domain__customer__status", "domain__customer__reseller__status").first())
    domain = mailbox.domain if mailbox is not None else (
        Domain.objects.filter(name=domain_name).only("id", "status", "verified_at").first())
    # RFC 5321 3.6.2 / 7.1: a domain we do not host (or not yet proven ours) is relaying, whatever the mailbox.
    if domain is None or domain.verified_at is None or domain.status == Domain.DomainStatus.PENDING:
        raise RecipientRefused(f"554 5.7.1 <{address}>: Relay access denied")
    if mailbox is None:
        raise RecipientRefused(f"550 5.1.1 <{address}>: User unknown")
    customer = domain.customer
    reseller = customer.reseller
    if (not mailbox.is_active or domain.status == Domain.DomainStatus.SUSPENDED
            or customer.status != Status.ACTIVE or (reseller is not None and reseller.status != Status.ACTIVE)):
        # RFC 3463 5.2.1: mailbox disabled, not accepting messages.
        raise RecipientRefused(f"550 5.2.1 <{address}>: Mailbox disabled, not accepting messages")
    if mailbox.quota_mb and mailbox.used_bytes >= mailbox.quota_mb * MIB:
        raise RecipientRefused(f"552 5.2.2 <{address}>: Mailbox full")
    return Route(mailbox_ids=(mailbox.pk,))
