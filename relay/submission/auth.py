"""SMTP AUTH against the database: mailbox address + password, or credential username + secret.

An attempt is three steps, each synchronous and run off the event loop by the relay: `lookup` (database: lockout
and the account's current state), `verify` (Argon2, on the hashing threads), then `succeeded` or `failed`
(database: last use, or the failure count and delay). Every refusal looks the same to the client (535 5.7.8);
an unknown or unusable account still costs a hash, so timing does not tell either.

Two kinds of secret are checked without the slow hash, in about a microsecond (`verify_quickly`, which the relay
runs on its event loop): a credential's secret, which we generated with 192 random bits and store as a keyed fast
hash (accounts.hashing; one still in Argon2 is converted at its next login); and a mailbox password that verified
before, remembered in the database (relay.models.VerifiedLogin) as an HMAC, under a key kept outside the
database, of the stored hash and the password. Every relay process reads that entry with the account, in the same
query, and it survives restarts; a new password is a new stored hash (new salt), so an entry can never outlive
the password it was for, and only an account that may log in now is answered from it.

The account's state is read from the database at every AUTH; an open session is checked again at each MAIL
against the customer's login generation (`generations_many`, then `relogin_many` when it moved), so a revocation
or a suspension stops the next message in every relay process.
"""

import functools
import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import hashing
from accounts.models import Customer, Domain, Mailbox, Reseller, SmtpCredential, Status
from accounts.networks import address_in, parse_networks
from accounts.normalize import split_address
from relay import metrics, sqlrows
from relay.models import AuthFailure, AuthLockout, VerifiedLogin
from relay.submission import lockout
from relay.submission.policy import Principal


@dataclass(frozen=True)
class Candidate:
    """What the database says about a login name before the password is checked."""

    locked: bool = False  # this client address may not try this username now (relay.submission.lockout)
    kind: str = ""  # what the name would be: "mailbox" (an address) or "credential"
    stored_hash: str = ""  # empty: no such account, verify against the dummy hash
    principal: Principal | None = None  # None: the account exists but may not log in now
    address_failures: int = 0  # failures recorded for the client address that count towards its lockout
    remembered: str = ""  # a mailbox's verified-login entry (VerifiedLogin.mac), if any
    used_here_lately: bool = False  # a credential whose last use, from this client address, is under LAST_USE_EVERY old


@dataclass(frozen=True)
class LoginResult:
    principal: Principal | None = None
    locked: bool = False  # the client address is refused for this username now: answer 421 and disconnect
    delay: float = 0.0  # seconds to wait before answering a failure


# --- the lookup: one query for the limits in force and the account, up to its reseller --------------------------
#
# Plain SQL: it runs at every AUTH, and the ORM spent ten times longer building its two queries than the database
# spent answering them, all of it holding the interpreter lock that the event loop needs. The flags are computed
# by the database, so no column needs converting from its stored form (SQLite keeps dates as text).
#
# The limits (relay.submission.lockout): the address locked out; the username slowed, and this address's failures
# for it in the window; the address's failures since its last lockout, which the relay adds to the AUTHs it is
# verifying from that address right now to stop a burst before it is hashed.
_ACTIVE = "EXISTS (SELECT 1 FROM {lockout} WHERE lifted_at IS NULL AND locked_until > %s AND kind = %s AND value = %s)"
_LIMITS = (f"{_ACTIVE}, {_ACTIVE}, "
           "(SELECT COUNT(*) FROM {failure} WHERE client_ip = %s AND username = %s AND created_at > %s), "
           "(SELECT COUNT(*) FROM {failure} WHERE client_ip = %s AND created_at > COALESCE("
           "(SELECT MAX(COALESCE(lifted_at, created_at)) FROM {lockout} WHERE kind = %s AND value = %s "
           "AND COALESCE(lifted_at, created_at) > %s), %s))")
_ACCOUNT = {
    # id, login name, stored hash, allowed networks, usable, mailbox id, mailbox local part, verified-login entry,
    # last use recent, address of the last use
    "credential": ("k.id, k.username, k.secret_hash, k.allowed_networks, "
                   "k.is_active AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > %s) "
                   "AND (m.id IS NULL OR m.is_active), m.id, m.local_part, '', "
                   "COALESCE(k.last_used_at > %s, FALSE), k.last_used_ip"),
    "mailbox": ("m.id, m.local_part, m.password_hash, '', m.is_active AND m.smtp_enabled, m.id, m.local_part, "
                "COALESCE(v.mac, ''), FALSE, NULL"),
}
# A credential's last use (when, from where) is written at most this often while it logs in from one address: a
# device sending all day logs in again and again, and each write was a transaction of its own on a write lane
# (bench/README.md). A login from another address is written at once.
LAST_USE_EVERY = timedelta(minutes=1)
_TENANT = ("d.id, d.name, d.verified_at IS NOT NULL AND d.status = %s, c.id, c.name, c.max_recipients, "
           "c.max_message_size, c.status = %s AND d.status <> %s AND (r.id IS NULL OR r.status = %s), "
           "c.login_generation")


@functools.cache
def _lookup_sql(root: str, vendor: str) -> str:
    table = {model: connection.ops.quote_name(model._meta.db_table)
             for model in (AuthLockout, AuthFailure, SmtpCredential, Mailbox, Domain, Customer, Reseller,
                           VerifiedLogin)}
    if root == "credential":
        joins = (f"LEFT JOIN {table[SmtpCredential]} k ON k.username = %s "
                 f"LEFT JOIN {table[Mailbox]} m ON m.id = k.mailbox_id "
                 f"LEFT JOIN {table[Domain]} d ON d.id = k.domain_id")
    else:
        joins = (f"LEFT JOIN {table[Domain]} d ON d.name = %s "
                 f"LEFT JOIN {table[Mailbox]} m ON m.domain_id = d.id AND m.local_part = %s "
                 f"LEFT JOIN {table[VerifiedLogin]} v ON v.mailbox_id = m.id")
    limits = _LIMITS.format(lockout=table[AuthLockout], failure=table[AuthFailure])
    return (f"SELECT {limits}, {_ACCOUNT[root]}, {_TENANT} "
            f"FROM (SELECT 1 AS anchor) a {joins} "
            f"LEFT JOIN {table[Customer]} c ON c.id = d.customer_id "
            f"LEFT JOIN {table[Reseller]} r ON r.id = c.reseller_id")


def _query(username: str, client_ip: str, now: datetime) -> tuple[str, str, list]:
    """(root, SQL, parameters) of one lookup. A name that cannot be an account's still has its limits read."""
    username = username.strip()
    parts = split_address(username) if "@" in username else None
    if parts is not None:
        root, where = "mailbox", [parts[1], parts[0]]  # domain, then local part
    else:
        root, where = "credential", [username]  # a malformed address matches no credential either
    adapt = connection.ops.adapt_datetimefield_value
    since = adapt(now - timedelta(seconds=settings.RELAY_AUTH_FAILURE_WINDOW))
    key, address = lockout.normalize_username(username), client_ip or None  # None matches no failure's address
    limits = [adapt(now), lockout.Kind.ADDRESS, client_ip or "", adapt(now), lockout.Kind.USERNAME, key,
              address, key, since, address, lockout.Kind.ADDRESS, client_ip or "", since, since]
    params = [*limits, *([adapt(now), adapt(now - LAST_USE_EVERY)] if root == "credential" else []),
              Domain.DomainStatus.ACTIVE, Status.ACTIVE, Domain.DomainStatus.SUSPENDED, Status.ACTIVE, *where]
    return root, _lookup_sql(root, connection.vendor), params


def secret_tag(stored_hash: str) -> str:
    """Tells whether the secret a session logged in with is still the account's (a new one has a new salt)."""
    return hashlib.blake2b(stored_hash.encode(), digest_size=8).hexdigest()


def _candidate_of(root: str, row: tuple, client_ip: str, *, with_lockout: bool) -> Candidate:
    (address_locked, username_slowed, pair_failures, address_failures, account_id, name, stored_hash, networks,
     usable, mailbox_id, local_part, remembered, used_lately, last_ip, domain_id, domain_name, can_send, customer_id,
     customer_name, max_recipients, max_message_size, tenant_active, login_generation) = row
    # A slowed username refuses only the addresses that have been failing for it: its owner is never locked out.
    locked = bool(address_locked) or (bool(username_slowed) and pair_failures > 0)
    if with_lockout and locked:
        return Candidate(locked=True, kind=root, address_failures=address_failures)
    if account_id is None:
        return Candidate(kind=root, address_failures=address_failures)
    principal = Principal(
        kind=root, username=name if root == "credential" else f"{local_part}@{domain_name}",
        customer_id=customer_id, customer_name=customer_name, domain_id=domain_id, domain_name=domain_name,
        domain_can_send=bool(can_send), credential_id=account_id if root == "credential" else None,
        mailbox_id=mailbox_id, address=(local_part, domain_name) if mailbox_id is not None else None,
        max_recipients=max_recipients, max_message_size=max_message_size, login_generation=login_generation,
        secret_tag=secret_tag(stored_hash),
    )
    usable = bool(usable) and bool(tenant_active) and (root == "mailbox" or not networks.strip()
                                                  or address_in(client_ip, parse_networks(networks)))
    return Candidate(kind=root, stored_hash=stored_hash, principal=principal if usable else None,
                     address_failures=address_failures, remembered=remembered or "",
                     used_here_lately=bool(used_lately) and bool(client_ip) and str(last_ip) == client_ip)


def _rows(queries: list[tuple[str, str, list]]) -> list[tuple]:
    rows = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(queries) > 1:
            cursor.execute("; ".join(sql for _, sql, _ in queries), [p for _, _, params in queries for p in params])
            for index in range(len(queries)):
                if index:
                    cursor.nextset()
                rows.append(cursor.fetchone())
        else:
            for _, sql, params in queries:
                cursor.execute(sql, params)
                rows.append(cursor.fetchone())
    return rows


def lookup_many(requests: list[tuple[str, str]], *, with_lockout: bool = True) -> list[Candidate]:
    """Database step of many AUTHs at once, [(username, client_ip)] -> [Candidate]: the limits in force and the
    account behind each name as it is right now. On PostgreSQL all of them go to the server in one round trip."""
    now = timezone.now()
    queries = [_query(username, client_ip, now) for username, client_ip in requests]
    return [_candidate_of(root, row, client_ip, with_lockout=with_lockout)
            for (root, _, _), row, (_, client_ip) in zip(queries, _rows(queries), requests)]


# The lookup's row as read on the event loop (relay.loop_reads.PreparedRows): text values, converted as the database
# driver would convert each column of _candidate_of's row.
_TEXT_TYPES = (bool, bool, int, int, int, str, str, str, bool, int, str, str, bool, str, int, str, bool, int, str, int,
               int, bool, int)


def _from_text(kind: type, value: bytes | None):
    if value is None:
        return None
    if kind is bool:
        return value == b"t"
    return int(value) if kind is int else value.decode()


def _as_text(value) -> bytes | None:
    if value is None:
        return None
    return (value.isoformat() if isinstance(value, datetime) else str(value)).encode()


async def lookup_on_loop(reader, username: str, client_ip: str) -> Candidate:
    """lookup_many's answer for one AUTH, read on the event loop through `reader` (a relay.loop_reads.PreparedRows,
    PostgreSQL), as a statement prepared once per connection: no database thread to wake, and no plan a login."""
    root, sql, params = _query(username, client_ip, timezone.now())
    row = await reader.row(f"relay_auth_lookup_{root}", sqlrows.numbered(sql), [_as_text(value) for value in params])
    return _candidate_of(root, tuple(_from_text(kind, value) for kind, value in zip(_TEXT_TYPES, row)), client_ip,
                         with_lockout=True)


# --- an open session: is its login still good? ------------------------------------------------------------------


def generations_many(customer_ids: list[int]) -> list[int | None]:
    """The login generation of each customer (None: gone), in one query: the relay's check at each MAIL."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    unique = sorted(set(customer_ids))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, login_generation FROM {table} WHERE id IN ({', '.join(['%s'] * len(unique))})",
                       unique)
        found = dict(cursor.fetchall())
    return [found.get(customer_id) for customer_id in customer_ids]


def generations_sql() -> str:
    """generations_many's query as relay.loop_reads.IntegersByKey reads it on the event loop."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    return f"SELECT id, login_generation FROM {table} WHERE id = ANY($1::bigint[])"


def relogin_many(requests: list[tuple[Principal, str]]) -> list[Principal | None]:
    """[(principal, client_ip)] -> the principal as it would log in now with the secret it logged in with, or None
    when that login is no longer good (revoked, disabled, suspended, secret changed, address no longer allowed).
    Asked only when the customer's login generation moved since the AUTH."""
    candidates = lookup_many([(principal.username, client_ip) for principal, client_ip in requests],
                             with_lockout=False)
    current = []
    for (principal, _), candidate in zip(requests, candidates):
        now = candidate.principal
        same = (now is not None and (now.kind, now.credential_id, now.mailbox_id) == (
            principal.kind, principal.credential_id, principal.mailbox_id) and now.secret_tag == principal.secret_tag)
        current.append(now if same else None)
    return current


@dataclass(frozen=True)
class Verified:
    """A login whose secret was right, and what its success writes (`succeeded_many`)."""

    principal: Principal
    secret_hash: tuple[str, str] | None = None  # a credential's (stored, new) hash: converted at this login
    remember: str = ""  # a mailbox password that took the slow hash: its verified-login entry
    record_use: bool = True  # a credential's: its last use written (not when written lately from this address)

    @property
    def writes(self) -> bool:
        return (self.principal.credential_id is not None and self.record_use) or bool(self.remember)


class _Slow:
    def __repr__(self):
        return "SLOW"


SLOW = _Slow()  # verify_quickly: only the slow hash can tell


def remembered_mac(stored_hash: str, password: str) -> str:
    """The verified-login entry of a password that verified against `stored_hash` ("" without a key: no cache).

    Keyed by a secret kept outside the database, so that a stolen database gives no faster way to the password
    than its Argon2 hash; bound to the stored hash (the NUL cannot occur in one), so that a new password never
    matches an old entry."""
    key = settings.RELAY_LOGIN_CACHE_SECRET
    return hashing.keyed_digest(key.encode(), f"{stored_hash}\0{password}") if key else ""


def verify_quickly(*, candidate: Candidate, password: str, valid_request: bool = True) -> "Verified | None | _Slow":
    """The answer when a keyed hash decides (a credential's secret, a remembered mailbox password); SLOW when only
    the password's slow hash can (then `verify`, off the event loop). A keyed hash costs about a microsecond:
    less than handing it to a thread."""
    if candidate.locked:
        return None
    stored, principal = candidate.stored_hash, candidate.principal
    if not stored or not password or not valid_request:
        if candidate.kind != "credential":
            return SLOW  # a mailbox's refusal costs the slow hash: against the dummy one
        metrics.AUTH_CHECKS.labels(method="hmac").inc()
        return hashing.check_dummy_secret(password) or None
    if stored.startswith(hashing.SECRET_SCHEME):
        metrics.AUTH_CHECKS.labels(method="hmac").inc()
        if not hashing.check_secret_hash(password, stored) or principal is None:
            return None
        return _verified(candidate, password)
    # Only an account that may log in answers early: a suspended one always costs the full hash, so its refusal
    # takes as long whether the password was right or not.
    if principal is not None and candidate.remembered:
        mac = remembered_mac(stored, password)
        if mac and hmac.compare_digest(candidate.remembered, mac):
            metrics.AUTH_CHECKS.labels(method="cached").inc()
            return Verified(principal=principal)
    return SLOW


def verify(*, candidate: Candidate, password: str, valid_request: bool = True) -> Verified | None:
    """The login when the password is right and the account may log in now, else None; may run the slow hash."""
    quick = verify_quickly(candidate=candidate, password=password, valid_request=valid_request)
    if quick is not SLOW:
        return quick
    metrics.AUTH_CHECKS.labels(method="argon2").inc()
    if not candidate.stored_hash or not password or not valid_request:
        return hashing.check_dummy(password or "-") or None
    if not hashing.check_hash(password, candidate.stored_hash) or candidate.principal is None:
        return None
    return _verified(candidate, password)


def _verified(candidate: Candidate, password: str) -> Verified:
    principal, stored = candidate.principal, candidate.stored_hash
    if principal.kind == "mailbox":
        return Verified(principal=principal, remember=remembered_mac(stored, password))
    if hashing.secret_hash_is_current(stored):
        return Verified(principal=principal, record_use=not candidate.used_here_lately)
    # In Argon2 or under an earlier key: stored anew at this login. Every process converting it at once makes the
    # same hash (no salt), so this session's secret tag is right whichever write lands.
    new = hashing.make_secret_hash(password)
    return Verified(principal=replace(principal, secret_tag=secret_tag(new)), secret_hash=(stored, new))


def succeeded_many(logins: list[tuple[Verified, str]]) -> list[None]:
    """What [(verified login, client address)] write, in one transaction: each credential's last use (and its hash
    converted), each mailbox's verified-login entry. The relay gathers the successes of a burst of logins on a
    customer's write lane, one statement run for all of a kind (plain SQL: the ORM's UPDATE cost more interpreter
    time, beside the event loop, than the write)."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    credentials = connection.ops.quote_name(SmtpCredential._meta.db_table)
    uses = [(now, client_ip, v.principal.credential_id) for v, client_ip in logins
            if v.principal.credential_id is not None and v.record_use]
    converted = [(v.secret_hash[1], v.principal.credential_id, v.secret_hash[0]) for v, _ in logins if v.secret_hash]
    remembered = {v.principal.mailbox_id: v.remember for v, _ in logins if v.remember}
    with transaction.atomic(), connection.cursor() as cursor:
        if uses:
            cursor.executemany(f"UPDATE {credentials} SET last_used_at = %s, last_used_ip = %s WHERE id = %s", uses)
        if converted:  # unless the credential changed meanwhile
            cursor.executemany(f"UPDATE {credentials} SET secret_hash = %s WHERE id = %s AND secret_hash = %s",
                               converted)
        if remembered:
            cursor.executemany(_remember_sql(connection.vendor),
                               [(mac, now, mailbox_id) for mailbox_id, mac in remembered.items()])
    return [None] * len(logins)


@functools.cache
def _remember_sql(vendor: str) -> str:
    # From the mailbox's row, so that a mailbox deleted meanwhile writes nothing (rather than failing the batch).
    # ON CONFLICT is both SQLite's (3.24+) and PostgreSQL's.
    entries = connection.ops.quote_name(VerifiedLogin._meta.db_table)
    mailboxes = connection.ops.quote_name(Mailbox._meta.db_table)
    return (f"INSERT INTO {entries} (mailbox_id, mac, verified_at) SELECT id, %s, %s FROM {mailboxes} WHERE id = %s "
            "ON CONFLICT (mailbox_id) DO UPDATE SET mac = excluded.mac, verified_at = excluded.verified_at")


def failed(*, username: str, client_ip: str) -> LoginResult:
    """Database step after a failure: count it; the delay to answer after, and whether it locked out."""
    delay = lockout.record_failure(client_ip=client_ip, username=username)
    return LoginResult(locked=lockout.locked(client_ip=client_ip, username=username) is not None, delay=delay)
