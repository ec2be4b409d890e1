"""What the MX accepts at RCPT and at the end of DATA. Every decision is taken before the 250: the MX never
accepts a message it would have to bounce (backscatter gets a provider's addresses blocklisted)."""

import re
import time
from dataclasses import dataclass

from django.conf import settings

from accounts.models import Domain, Mailbox
from accounts.normalize import normalize_domain, split_address
from accounts.selectors.recipients import (Forwarder, RecipientRefused, is_bare_postmaster, postmaster_address,
                                          resolve_recipient, route_generation)
from relay.submission.policy import Reject, check_path

RELAY_DENIED = "554 5.7.1 Relay access denied"
# check_path's refusals that are attempts to route mail elsewhere: on port 25 they are relaying, whatever the form.
_RELAY_TRICKS = {"relay_trick", "quoted_local_part", "address_literal"}


def recipient_path(path: str, *, smtputf8: bool) -> tuple[str, str]:
    """(local part, A-label domain) of a RCPT path; Reject with 554 5.7.1 for %, !, source routes, quoting and
    address literals (an IP literal names no hosted domain, so it can only be a relay attempt). The bare
    `<postmaster>` (RFC 5321 4.5.1) is postmaster at the provider's own domain."""
    if is_bare_postmaster(path):
        local, _, domain = postmaster_address().partition("@")
        return local, normalize_domain(domain)
    try:
        parsed = check_path(path, smtputf8=smtputf8)
    except Reject as reject:
        if reject.reason in _RELAY_TRICKS:
            raise Reject(RELAY_DENIED, "relay_trick") from None
        raise
    if parsed is None:
        raise Reject("501 5.1.3 Bad recipient address syntax: <> is not a recipient", "syntax")
    return parsed


def sender_path(path: str, *, smtputf8: bool) -> str:
    """The MAIL FROM address, '' for the null sender (bounces must reach us, RFC 5321 4.5.5)."""
    parsed = check_path(path, smtputf8=smtputf8, null_ok=True)
    return "" if parsed is None else f"{parsed[0]}@{parsed[1]}"


def check_recipient_count(current: int) -> None:
    if current >= settings.MX_MAX_RECIPIENTS:
        # RFC 5321 4.5.3.1.10: 452, and the client sends the rest in another transaction.
        raise Reject("452 4.5.3 Too many recipients", "too_many_recipients")


@dataclass(frozen=True)
class Destination:
    """One hosted mailbox a recipient address leads to."""

    mailbox_id: int
    address: str  # the mailbox's own address (A-label), as Dovecot knows it
    customer_id: int


@dataclass(frozen=True)
class Accepted:
    address: str
    mailboxes: tuple[Destination, ...]
    external: tuple[str, ...]
    free: int | None = None  # octets left in the fullest of its mailboxes (None: no limit)
    # The hosted domain of the address when it forwards outside (the message log shows the message under it).
    forwarding_domain_id: int | None = None
    # The address's domain honours a sender's DMARC p=reject (Domain.dmarc_reject_policy "reject").
    dmarc_reject: bool = True
    # The address's domain greylists new senders (Domain.greylisting; relay.inbound.greylist).
    greylisting: bool = False
    # Per external address, in order: the hosted domain (and mailbox) that forwards it. Each copy goes out in that
    # domain's name (SRS, ARC) and counts against its (or the mailbox's) sending limits.
    forwarders: tuple[Forwarder, ...] = ()


class RouteCache:
    """Recipients found deliverable in the last MX_RECIPIENT_CACHE_SECONDS, per MX process: a sender's next
    messages to the same addresses skip the database (3 ms of the server's time per RCPT, most of the MX's cost
    in bench/mx.py). Refusals are never kept, so a restored mailbox is taken at once; everything is forgotten when
    the route generation (accounts.models.RouteGeneration, read once per SMTP transaction) moved, so a mailbox,
    domain or customer suspended or deleted, or an alias changed, is refused at the next RCPT."""

    def __init__(self, seconds: float, size: int = 10000):
        self.seconds, self.size = seconds, size
        self.entries: dict[str, tuple[float, Accepted]] = {}
        self.generation: int | None = None

    def follow(self, generation: int) -> None:
        """Forget everything when where mail goes changed since the entries were looked up."""
        if generation != self.generation:
            self.entries.clear()
            self.generation = generation

    def get(self, address: str, size: int | None) -> Accepted | None:
        entry = self.entries.get(address)
        if entry is None or entry[0] < time.monotonic():
            return None
        accepted = entry[1]
        return accepted if fits(accepted, size) else None  # else asked again: the database says whether it fits

    def put(self, accepted: Accepted, generation: int | None) -> None:
        # A lookup made for a transaction that began before the last change may be out of date: not kept.
        if self.seconds <= 0 or generation != self.generation:
            return
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[accepted.address] = (time.monotonic() + self.seconds, accepted)


def fits(accepted: Accepted, size: int | None) -> bool:
    """Whether a message of the declared SIZE (None: not declared) fits in the room the route was found with."""
    return size is None or accepted.free is None or size <= accepted.free


def check_recipient(address: str, size: int | None = None) -> Accepted:
    """The route of one RCPT address (runs on a database thread); Reject with the reply otherwise. With the SIZE
    the client declared, a mailbox without that much room left refuses it now rather than after DATA."""
    try:
        route = resolve_recipient(address)
    except RecipientRefused as refused:
        raise Reject(refused.reply, "recipient") from None
    rows = (Mailbox.objects.filter(pk__in=route.mailbox_ids)
            .values_list("id", "local_part", "domain__name", "domain__customer_id", "quota_mb", "used_bytes"))
    mailboxes, free = [], None
    for pk, local, domain, customer_id, quota_mb, used in rows:
        if quota_mb:
            left = max(quota_mb * 1024 * 1024 - used, 0)
            free = left if free is None else min(free, left)
        if size is not None and free is not None and size > free:
            raise Reject(f"552 5.2.2 <{address}>: Mailbox full (not enough room for {size} octets)", "mailbox_full")
        mailboxes.append(Destination(pk, f"{local}@{domain}", customer_id))
    parts = split_address(address)
    domain = parts and Domain.objects.filter(name=parts[1]).values_list("pk", "dmarc_reject_policy", "greylisting").first()
    forwarding = route.forwarders[0].domain_id if route.external else None
    return Accepted(address=address, mailboxes=tuple(mailboxes), external=tuple(route.external), free=free,
                    forwarding_domain_id=forwarding, forwarders=route.forwarders,
                    dmarc_reject=not domain or domain[1] == Domain.DmarcRejectPolicy.REJECT,
                    greylisting=bool(domain and domain[2]))


def route_generations(items: list) -> list[int]:
    """The route generation, read once for the transactions of several sessions starting at the same moment."""
    generation = route_generation()
    return [generation] * len(items)


def check_recipients(items: list[tuple[str, int | None]]) -> list[Accepted | Reject]:
    """check_recipient for the RCPTs of several sessions at once (one thread, one turn for all of them)."""
    results = []
    for address, size in items:
        try:
            results.append(check_recipient(address, size))
        except Reject as reject:
            results.append(reject)
    return results


_RECEIVED = re.compile(rb"^received[ \t]*:", re.I | re.M)


def header_block(content: bytes) -> bytes:
    end = content.find(b"\r\n\r\n")
    return content if end < 0 else content[:end + 2]


def check_loop(content: bytes) -> None:
    # RFC 5321 6.3: a message that went through this many hops is looping; refusing it ends the loop. Each field
    # holds the word: with fewer of it than the limit (nearly every message) the fields need not be counted.
    head = header_block(content)
    limit = settings.MX_MAX_RECEIVED
    if head.lower().count(b"received") >= limit and len(_RECEIVED.findall(head)) >= limit:
        raise Reject("554 5.4.6 Too many hops: mail loop detected", "loop")
