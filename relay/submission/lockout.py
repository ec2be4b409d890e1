"""Brute-force protection for SMTP AUTH, shared by every relay process through the database.

Failed AUTHs are counted per client address and per username over RELAY_AUTH_FAILURE_WINDOW seconds (only
those since the last lockout of the same address or username was lifted or began). Each failure is answered
after a delay that doubles with the count; reaching RELAY_AUTH_MAX_FAILURES locks the address or the username
out for RELAY_AUTH_LOCKOUT_SECONDS: the relay answers 421 4.7.0 and disconnects. Support staff can lift it.
Successful logins are not recorded and do not reset anything.
"""

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Customer, SmtpCredential
from accounts.selectors import mailbox_by_address
from relay.models import AuthFailure, AuthLockout

Kind = AuthLockout.Kind


def normalize_username(username: str | None) -> str:
    return (username or "").strip().lower()[:320]


def _keys(client_ip: str | None, username: str | None) -> list[tuple[str, str]]:
    keys = []
    if client_ip:
        keys.append((Kind.ADDRESS, client_ip))
    username = normalize_username(username)
    if username:
        keys.append((Kind.USERNAME, username))
    return keys


def _keys_q(keys: list[tuple[str, str]]) -> Q:
    q = Q(pk__in=[])
    for kind, value in keys:
        q |= Q(kind=kind, value=value)
    return q


def active_lockouts(qs: QuerySet[AuthLockout] | None = None, *, now: datetime | None = None) -> QuerySet[AuthLockout]:
    qs = AuthLockout.objects.all() if qs is None else qs
    return qs.filter(lifted_at__isnull=True, locked_until__gt=now or timezone.now())


def locked(*, client_ip: str | None, username: str | None = None, now: datetime | None = None) -> AuthLockout | None:
    """The lockout in force for this client address or this username, if any (username None: address only)."""
    keys = _keys(client_ip, username)
    if not keys:
        return None
    return active_lockouts(now=now).filter(_keys_q(keys)).order_by("-locked_until").first()


def _serialize(keys: list[tuple[str, str]]) -> None:
    # Two relay processes recording the threshold failure at once must not both create a lockout. SQLite's
    # IMMEDIATE transaction already holds the write lock; PostgreSQL takes a transaction-scoped advisory lock
    # per address/username, in one order so two sessions never wait on each other crosswise.
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for kind, value in sorted(keys):
            digest = hashlib.blake2b(f"relay-auth:{kind}:{value}".encode(), digest_size=8).digest()
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)])


def _count_since_last_lockout(kind: str, value: str, now: datetime) -> int:
    since = now - timedelta(seconds=settings.RELAY_AUTH_FAILURE_WINDOW)
    last = AuthLockout.objects.filter(kind=kind, value=value).order_by("-created_at").first()
    if last is not None:
        since = max(since, last.lifted_at or last.created_at)
    field = "client_ip" if kind == Kind.ADDRESS else "username"
    return AuthFailure.objects.filter(**{field: value}, created_at__gt=since, created_at__lte=now).count()


def customer_of_username(username: str) -> Customer | None:
    credential = SmtpCredential.objects.select_related("customer").filter(username=username).first()
    if credential is not None:
        return credential.customer
    mailbox = mailbox_by_address(username)
    return mailbox.domain.customer if mailbox is not None else None


def delay_for(failures: int) -> float:
    if failures < 1:
        return 0.0
    return min(settings.RELAY_AUTH_DELAY_BASE * 2 ** (failures - 1), settings.RELAY_AUTH_DELAY_MAX)


def record_failure(*, client_ip: str, username: str | None, customer: Customer | None = None,
                   now: datetime | None = None) -> float:
    """Record one failed AUTH; returns the seconds to wait before answering it.

    Reaching the threshold creates the lockout: call locked() afterwards to know whether to answer 421.
    """
    now = now or timezone.now()
    username = normalize_username(username)
    keys = _keys(client_ip, username)
    with transaction.atomic():
        _serialize(keys)
        AuthFailure.objects.create(client_ip=client_ip, username=username, created_at=now)
        worst = 0
        for kind, value in keys:
            failures = _count_since_last_lockout(kind, value, now)
            worst = max(worst, failures)
            if failures < settings.RELAY_AUTH_MAX_FAILURES:
                continue
            if active_lockouts(now=now).filter(kind=kind, value=value).exists():
                continue
            owner = None
            if kind == Kind.USERNAME:
                owner = customer if customer is not None else customer_of_username(value)
            AuthLockout.objects.create(
                kind=kind, value=value, customer=owner, failures=failures, created_at=now,
                locked_until=now + timedelta(seconds=settings.RELAY_AUTH_LOCKOUT_SECONDS),
            )
    return delay_for(worst)


def purge_old_failures(*, now: datetime | None = None) -> int:
    """Delete failures older than the counting window; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.RELAY_AUTH_FAILURE_WINDOW)
    deleted, _ = AuthFailure.objects.filter(created_at__lt=cutoff).delete()
    return deleted
