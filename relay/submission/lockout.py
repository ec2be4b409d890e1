"""Brute-force protection for SMTP AUTH, shared by every relay process through the database.

Failed AUTHs are counted per client address and per username over RELAY_AUTH_FAILURE_WINDOW seconds (only
those since the last lockout of the same address or username was lifted or began); a username is counted in its
canonical spelling (accounts.normalize.login_key), the one the account lookup reads. Each failure is answered
after a delay that doubles with the count. Reaching RELAY_AUTH_MAX_FAILURES:

- from one client address locks that address out for RELAY_AUTH_LOCKOUT_SECONDS: the relay answers 421 4.7.0
  before checking any password from it, and disconnects;
- for one username, from any addresses, slows that username for as long, but never locks its owner out (OWASP
  ASVS 2.2.1; Postfix and Dovecot throttle the client, never the account): an address that has failed for the
  username within the window is refused for it before its password is checked, every other address still gets
  its login checked (the right secret gets 235, a wrong one counts and refuses that address too), and failures
  are answered after the longest delay. Mailbox logins are public addresses: anyone can fail for them.

Both show in the panel and support staff can lift them. Successful logins are not recorded and reset nothing.
"""

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Customer, SmtpCredential
from accounts.normalize import login_key
from accounts.selectors import mailbox_by_address
from relay.models import AuthFailure, AuthLockout

Kind = AuthLockout.Kind


def normalize_username(username: str | None) -> str:
    return login_key(username)


def _keys(client_ip: str | None, username: str | None) -> list[tuple[str, str]]:
    keys = []
    if client_ip:
        keys.append((Kind.ADDRESS, client_ip))
    username = normalize_username(username)
    if username:
        keys.append((Kind.USERNAME, username))
    return keys


def active_lockouts(qs: QuerySet[AuthLockout] | None = None, *, now: datetime | None = None) -> QuerySet[AuthLockout]:
    qs = AuthLockout.objects.all() if qs is None else qs
    return qs.filter(lifted_at__isnull=True, locked_until__gt=now or timezone.now())


def locked(*, client_ip: str | None, username: str | None = None, now: datetime | None = None) -> AuthLockout | None:
    """The lockout that refuses this client address for this username before its password is checked, if any:
    one of the address, or one of the username when the address has itself failed for it within the window."""
    now = now or timezone.now()
    found = active_lockouts(now=now).filter(kind=Kind.ADDRESS, value=client_ip).first() if client_ip else None
    if found is not None:
        return found
    username = normalize_username(username)
    slowed = username_lockout(username, now=now) if username and client_ip else None
    if slowed is not None and AuthFailure.objects.filter(
            username=username, client_ip=client_ip, created_at__lte=now,
            created_at__gt=now - timedelta(seconds=settings.RELAY_AUTH_FAILURE_WINDOW)).exists():
        return slowed
    return None


def username_lockout(username: str | None, *, now: datetime | None = None) -> AuthLockout | None:
    """The lockout slowing this username (any spelling of it), if one is in force."""
    username = normalize_username(username)
    if not username:
        return None
    return active_lockouts(now=now).filter(kind=Kind.USERNAME, value=username).order_by("-locked_until").first()


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
    # The exponent is bounded: 2 ** 1024 does not fit a float, and the ceiling is reached long before.
    return min(settings.RELAY_AUTH_DELAY_BASE * 2 ** min(failures - 1, 64), settings.RELAY_AUTH_DELAY_MAX)


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
        if username and username_lockout(username, now=now) is not None:
            return settings.RELAY_AUTH_DELAY_MAX  # a slowed username: every failure waits the longest
    return delay_for(worst)


def purge_old_failures(*, now: datetime | None = None) -> int:
    """Delete failures older than the counting window; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.RELAY_AUTH_FAILURE_WINDOW)
    deleted, _ = AuthFailure.objects.filter(created_at__lt=cutoff).delete()
    return deleted
