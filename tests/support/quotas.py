"""Quota checks as the relay makes them, one message at a time: for tests that count without a relay."""

from datetime import datetime

from accounts.models import Mailbox, SmtpCredential
from accounts.quotas import _MODELS, Counter, Level, Scope, _read_levels, usage


def _sender_key(credential: SmtpCredential | None, mailbox: Mailbox | None) -> tuple[str, int]:
    if (credential is None) == (mailbox is None):
        raise TypeError("pass exactly one of credential= or mailbox=")
    return (Scope.CREDENTIAL, credential.pk) if credential is not None else (Scope.MAILBOX, mailbox.pk)


def levels_for(*, credential: SmtpCredential | None = None, mailbox: Mailbox | None = None) -> list[Level]:
    """The sender's levels, innermost first: credential or mailbox, (mailbox), domain, customer, reseller."""
    return _read_levels(*_sender_key(credential, mailbox))


SCOPE_OF = {model: scope for scope, model in _MODELS.items()}


def usage_for(obj, *, now: datetime | None = None) -> dict[str, dict[str, int | None]]:
    """For the progress bars: {"hour": {"used": n, "limit": n|None}, "day": {...}} of a reseller, customer,
    domain, mailbox or credential (limit None: no limit of its own)."""
    used = usage(scope=SCOPE_OF[type(obj)], scope_id=obj.pk, now=now)
    return {"hour": {"used": used["hour"], "limit": obj.send_per_hour},
            "day": {"used": used["day"], "limit": obj.send_per_day}}


def check_and_count(*, credential: SmtpCredential | None = None, mailbox: Mailbox | None = None,
                    recipients: int, now: datetime | None = None) -> None:
    """Count `recipients` at every level if all have room, else raise QuotaExceeded and count nothing.

    Must run inside the caller's transaction.atomic(), the one that stores the message (see Counter).
    """
    sender = _sender_key(credential, mailbox)
    if recipients < 1:
        raise ValueError("recipients must be at least 1")
    counter = Counter([sender], now=now)
    counter.take(sender, recipients)
    counter.flush()
