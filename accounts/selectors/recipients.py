"""Where mail to an address goes: the MX asks this at every RCPT, and refuses there, never accept-then-bounce.

An address at a hosted, verified domain is, in this order: an SRS bounce address (routed back to the original
sender when its hash and age are good), a mailbox (with its forward copies), an enabled alias, the same local part
at the domain this one is an alias domain of, the domain's catch-all, and for `postmaster` the domain's first mailbox
(see below). Aliases, forwards and catch-alls may name
other hosted addresses; those are followed, a hop at a time, up to MAX_HOPS deep, and a cycle is refused.

Replies (RFC 5321 4.2/4.3.2, enhanced codes RFC 3463):
- domain not hosted or not verified: 554 5.7.1 (no relaying; Postfix's reply, which DESIGN.md fixes);
- hosted, nothing takes the local part: 550 5.1.1 (X.1.1 bad destination mailbox address);
- mailbox, domain, customer or reseller suspended: 550 5.2.1 (X.2.1 mailbox disabled, not accepting messages);
- mailbox over its quota: 552 5.2.2 (X.2.2 mailbox full; 552 is RCPT's "exceeded storage allocation");
- an alias loop or a chain too long: 550 5.4.6 (X.4.6 routing loop detected). 550, not 554: RFC 5321 4.3.2
  lists 550 among RCPT's replies and 554 only for DATA; the Received-count loop check after DATA uses 554 5.4.6.
postmaster (RFC 5321 4.5.1: every domain that takes mail must take it, in any case): a mailbox, alias, alias domain
or catch-all named postmaster wins; when nothing takes it, it goes to the oldest active mailbox of the domain, else
to the oldest active mailbox of the domain's customer (on a verified domain). The bare `<postmaster>` (no domain)
is postmaster at MX_POSTMASTER_DOMAIN, the provider's own hosted domain (default RELAY_HOSTNAME).
A destination of an alias that is refused (a suspended or full mailbox, a hosted address that no longer exists)
is left out of the route; the recipient is refused with the first such reason only when nothing is left.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection

from accounts import srs
from accounts.models import Alias, Domain, Mailbox, RouteGeneration, Status
from accounts.normalize import normalize_domain, normalize_local_part

# Hops from the address asked for to a final destination (alias -> alias -> mailbox is 2).
MAX_HOPS = 10
# Addresses one recipient may expand to (RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted).
MAX_EXPANSION = 100

RELAY_DENIED = "554 5.7.1 Relay access denied"
USER_UNKNOWN = "550 5.1.1 User unknown"
SUSPENDED = "550 5.2.1 Mailbox disabled, not accepting messages"
MAILBOX_FULL = "552 5.2.2 Mailbox full"
LOOP = "550 5.4.6 Alias loop detected"
TOO_DEEP = "550 5.4.6 Too many alias hops"
TOO_MANY = "550 5.4.6 Alias expands to too many addresses"
SRS_INVALID = "550 5.1.1 Invalid or expired SRS address"
POSTMASTER = "postmaster"
_MAILBOX_FIELDS = ("id", "domain_id", "is_active", "quota_mb", "used_bytes", "forward_to", "forward_keep_copy")


@dataclass(frozen=True)
class Forwarder:
    """Who sends the copy to an external address: the hosted domain whose alias, catch-all or mailbox names it (its
    SRS address and ARC seal) and, for a mailbox's forward copy, that mailbox (whose sending limits count it)."""

    domain_id: int
    mailbox_id: int | None = None


@dataclass(frozen=True)
class Route:
    mailbox_ids: tuple[int, ...]  # hosted mailboxes (the MX delivers them over LMTP)
    external: tuple[str, ...]  # external addresses (forwarded through the outbound queue with SRS)
    forwarders: tuple[Forwarder, ...] = ()  # one per external address, in the same order


class RecipientRefused(Exception):
    """The recipient is refused at RCPT; .reply is the full SMTP reply line."""

    def __init__(self, reply: str):
        self.reply = reply
        super().__init__(reply)

    @property
    def code(self) -> int:
        return int(self.reply[:3])


@dataclass
class _Walk:
    mailbox_ids: dict[int, None] = field(default_factory=dict)
    external: dict[str, Forwarder] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    domains: dict[str, Domain | None] = field(default_factory=dict)
    seen: int = 0

    def domain(self, name: str) -> Domain | None:
        if name not in self.domains:
            self.domains[name] = (Domain.objects.select_related("customer", "customer__reseller")
                                  .only("id", "name", "status", "verified_at", "alias_of_id", "catchall",
                                        "customer__status", "customer__reseller__status")
                                  .filter(name=name).first())
        return self.domains[name]

    def refuse(self, reply: str, *, top: bool) -> None:
        if top:
            raise RecipientRefused(reply)
        self.refusals.append(reply)

    def expand(self, address: str, path: tuple[str, ...], via: Forwarder | None = None) -> None:
        """Follow one address; `path` holds the hosted addresses that led here (empty for the recipient asked),
        `via` the hosted domain (and mailbox) whose alias, catch-all or forward named it."""
        top = not path
        self.seen += 1
        if self.seen > MAX_EXPANSION:
            raise RecipientRefused(TOO_MANY)
        local_raw, at, domain_raw = address.strip().strip("<>").rpartition("@")
        try:
            domain_name = normalize_domain(domain_raw)
        except ValidationError:
            domain_name = None
        if not at or not local_raw or domain_name is None:
            # Not a plain address at a domain name (IP literals, source routes): nothing we host.
            return self.refuse(RELAY_DENIED if top else USER_UNKNOWN, top=top)
        domain = self.domain(domain_name)
        if domain is None:
            if top:
                raise RecipientRefused(RELAY_DENIED)
            self.external.setdefault(f"{local_raw}@{domain_name}", via)
            return None
        if not domain.is_verified:
            return self.refuse(RELAY_DENIED if top else USER_UNKNOWN, top=top)
        if top and srs.is_srs_local_part(local_raw):
            try:
                original = srs.srs_reverse(f"{local_raw}@{domain_name}")
            except srs.SrsInvalid:
                raise RecipientRefused(SRS_INVALID) from None
            self.external.setdefault(original, Forwarder(domain.pk))
            return None
        customer = domain.customer
        reseller = customer.reseller
        if (domain.status == Domain.DomainStatus.SUSPENDED or customer.status == Status.SUSPENDED
                or (reseller is not None and reseller.status == Status.SUSPENDED)):
            return self.refuse(SUSPENDED, top=top)
        try:
            local = normalize_local_part(local_raw)
        except ValidationError:
            return self.refuse(USER_UNKNOWN, top=top)
        key = f"{local}@{domain_name}"
        if key in path:
            raise RecipientRefused(LOOP)
        if len(path) > MAX_HOPS:
            raise RecipientRefused(TOO_DEEP)
        here = (*path, key)

        mailbox = Mailbox.objects.filter(domain=domain, local_part=local).values(*_MAILBOX_FIELDS).first()
        if mailbox is not None:
            return self._mailbox(mailbox, here, top=top)
        alias = Alias.objects.filter(domain=domain, local_part=local, is_enabled=True).values("destinations").first()
        if alias is not None:
            for destination in alias["destinations"]:
                self.expand(destination, here, Forwarder(domain.pk))
            return None
        if domain.alias_of_id:
            target = Domain.objects.filter(pk=domain.alias_of_id).values_list("name", flat=True).first()
            if target:
                return self.expand(f"{local}@{target}", here)
        if domain.catchall:
            return self.expand(domain.catchall, here, Forwarder(domain.pk))
        if local == POSTMASTER:
            mailbox = _postmaster_mailbox(domain)
            if mailbox is not None:
                return self._mailbox(mailbox, here, top=top)
        return self.refuse(USER_UNKNOWN, top=top)

    def _mailbox(self, mailbox: dict, here: tuple[str, ...], *, top: bool) -> None:
        if not mailbox["is_active"]:
            return self.refuse(SUSPENDED, top=top)
        forwards = mailbox["forward_to"] or []
        if not forwards or mailbox["forward_keep_copy"]:
            if mailbox["used_bytes"] >= mailbox["quota_mb"] * 1024 * 1024:
                return self.refuse(MAILBOX_FULL, top=top)
            self.mailbox_ids[mailbox["id"]] = None
        for destination in forwards:
            # The postmaster fallback may be a mailbox of another of the customer's domains: its own domain forwards.
            self.expand(destination, here, Forwarder(mailbox["domain_id"], mailbox["id"]))
        return None


def _postmaster_mailbox(domain: Domain) -> dict | None:
    mailboxes = Mailbox.objects.filter(is_active=True).order_by("created_at", "id").values(*_MAILBOX_FIELDS)
    return (mailboxes.filter(domain=domain).first()
            or mailboxes.filter(domain__customer_id=domain.customer_id, domain__verified_at__isnull=False).first())


def postmaster_address() -> str:
    """Where the bare `<postmaster>` (RFC 5321 4.5.1, no domain) goes: postmaster at the provider's own domain."""
    return f"{POSTMASTER}@{settings.MX_POSTMASTER_DOMAIN or settings.RELAY_HOSTNAME}"


def is_bare_postmaster(address: str) -> bool:
    return address.strip().strip("<>").lower() == POSTMASTER


def resolve_recipient(address: str) -> Route:
    """The route of mail to `address`, or RecipientRefused with the reply for the RCPT."""
    if is_bare_postmaster(address):
        address = postmaster_address()
    walk = _Walk()
    walk.expand(address, ())
    if not walk.mailbox_ids and not walk.external:
        raise RecipientRefused(walk.refusals[0] if walk.refusals else USER_UNKNOWN)
    return Route(mailbox_ids=tuple(walk.mailbox_ids), external=tuple(walk.external),
                 forwarders=tuple(walk.external.values()))


def route_generation_sql() -> str:
    return f"SELECT value FROM {connection.ops.quote_name(RouteGeneration._meta.db_table)} WHERE id = 1"


def route_generation() -> int:
    """Moves with every change to where mail goes (accounts.services.routes.routes_changed). Plain SQL: the MX asks
    it once per SMTP transaction, and the ORM's query building cost more than the query."""
    with connection.cursor() as cursor:
        cursor.execute(route_generation_sql())
        row = cursor.fetchone()
    return row[0] if row else 0
