"""What an authenticated client may do: which sender addresses, which paths, how many recipients, how large.

Replies carry enhanced status codes (RFC 3463); the choice of code is explained where it is not obvious.
"""

import functools
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.normalize import normalize_domain

# RFC 5322 atext, plus any non-ASCII character when the transaction declared SMTPUTF8 (RFC 6531).
_ATEXT = r"[A-Za-z0-9!#$&'*+/=?^_`{|}~\-" + r"\u0080-\U0010ffff]"
_DOT_ATOM = re.compile(rf"^{_ATEXT}+(\.{_ATEXT}+)*$")


class Reject(Exception):
    """A command refused with an SMTP reply; `reason` labels it for metrics and logs."""

    def __init__(self, reply: str, reason: str):
        super().__init__(reply)
        self.reply, self.reason = reply, reason


@dataclass(frozen=True)
class Principal:
    """Who authenticated, as loaded at AUTH: nothing here is trusted past the end of the connection."""

    kind: str  # "mailbox" | "credential"
    username: str
    customer_id: int
    customer_name: str
    domain_id: int
    domain_name: str  # A-label
    domain_can_send: bool
    credential_id: int | None = None
    mailbox_id: int | None = None
    # (local part, A-label domain) when the principal may send as one address only; None: any of its domain.
    address: tuple[str, str] | None = None
    max_recipients: int = 100
    max_message_size: int = 25 * 1024 * 1024
    # The customer's login generation read at AUTH, and which stored secret the login matched (auth.secret_tag).
    login_generation: int = 0
    secret_tag: str = ""

    @property
    def log_fields(self) -> dict:
        return {"customer": self.customer_id,
                "credential": self.username if self.kind == "credential" else None,
                "mailbox": self.username if self.kind == "mailbox" else None}


def split_path(path: str) -> tuple[str, str]:
    """(mailbox, rest) of a MAIL/RCPT argument after FROM:/TO:, e.g. '<a@b> SIZE=10' -> ('a@b', 'SIZE=10')."""
    path = path.strip()
    if path.startswith("<"):
        end = path.find(">")
        if end < 0:
            raise Reject("501 5.5.4 Syntax: missing closing >", "syntax")
        return path[1:end], path[end + 1:].strip()
    mailbox, _, rest = path.partition(" ")
    return mailbox, rest.strip()


@functools.lru_cache(maxsize=8192)
def check_path(path: str, *, smtputf8: bool, null_ok: bool = False) -> tuple[str, str] | None:
    """(local part, A-label domain) of a MAIL/RCPT path, or None for the null path; Reject for anything else.

    Only plain `local@domain` is accepted: the forms that once let a server be used as an open relay
    (source routes, %-hack, !-paths) and quoted local parts and address literals never reach the policy.
    Remembered per path (a pure function, asked several times per message for the same few addresses; a
    refusal is not remembered, so it is worked out again each time).
    """
    mailbox, _ = split_path(path)
    try:
        mailbox.encode()
    except UnicodeEncodeError:  # octets that are not UTF-8, kept by aiosmtpd as surrogates (RFC 6531 3.3)
        raise Reject("501 5.6.7 Bad address syntax: not valid UTF-8", "syntax") from None
    if len(mailbox) + 2 > 256:  # RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets
        raise Reject("501 5.1.3 Path too long (at most 256 characters)", "path_too_long")
    if not mailbox:
        if null_ok:
            return None
        raise Reject("550 5.7.1 The null sender <> is not accepted from authenticated clients", "null_sender")
    if mailbox.startswith("@"):
        raise Reject("554 5.7.1 Relay access denied: source routes are not accepted", "relay_trick")
    if not mailbox.isascii() and not smtputf8:
        # RFC 6531 3.7.4.1
        raise Reject("553 5.6.7 Non-ASCII addresses need the SMTPUTF8 parameter", "non_ascii")
    local, at, domain = mailbox.rpartition("@")
    if not at:
        raise Reject("501 5.1.3 Bad address syntax: use local-part@domain", "syntax")
    if local.startswith('"') or '"' in local or "\\" in local:
        raise Reject("501 5.1.3 Quoted local parts are not accepted", "quoted_local_part")
    if "%" in local or "!" in local or "@" in local:
        raise Reject("554 5.7.1 Relay access denied: % and ! routing is not accepted", "relay_trick")
    if domain.startswith("["):
        raise Reject("501 5.1.3 Address literals are not accepted: use a domain name", "address_literal")
    if len(local.encode()) > 64:  # RFC 5321 4.5.3.1.1
        raise Reject("501 5.1.3 Local part too long (at most 64 characters)", "local_part_too_long")
    if not _DOT_ATOM.match(local):
        raise Reject("501 5.1.3 Bad address syntax in the local part", "syntax")
    try:
        domain = normalize_domain(domain)
    except ValidationError:
        raise Reject("501 5.1.3 Bad address syntax in the domain", "syntax") from None
    return local, domain


def may_send_as(principal: Principal, local: str, domain: str) -> bool:
    """A mailbox login sends as its address; a credential as its mailbox's, or as any address of its domain."""
    if not principal.domain_can_send or domain != principal.domain_name:
        return False
    if principal.address is not None:
        return (local.lower(), domain) == principal.address
    return True


def check_sender(principal: Principal, local: str, domain: str) -> None:
    if not may_send_as(principal, local, domain):
        raise Reject("553 5.7.1 Sender address rejected: not owned by user", "sender_not_owned")


def max_recipients(principal: Principal) -> int:
    return min(settings.RELAY_MAX_RECIPIENTS, principal.max_recipients)


def max_message_size(principal: Principal | None) -> int:
    if principal is None:
        return settings.RELAY_MAX_MESSAGE_SIZE
    return min(settings.RELAY_MAX_MESSAGE_SIZE, principal.max_message_size)


def check_recipient_count(principal: Principal, current: int) -> None:
    if current >= max_recipients(principal):
        # RFC 5321 4.5.3.1.10: 452 lets the client send the rest in another transaction.
        raise Reject("452 4.5.3 Too many recipients", "too_many_recipients")


def check_size(principal: Principal, size: int) -> None:
    if size > max_message_size(principal):
        raise Reject("552 5.3.4 Message size exceeds fixed limit", "too_large")


def size_parameter(mail_options: list[str]) -> int | None:
    for option in mail_options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isascii() and value.isdigit():  # '²'.isdigit() is true
            return int(value)
    return None
