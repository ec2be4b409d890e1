"""Sending quotas: recipients per rolling hour and day, at every level a sender belongs to.

Usage is kept in SendUsage buckets of one minute per scope; the rolling hour is the sum of the last 60 buckets
(the current minute included), the rolling day the last 1440. Levels, from the sender up: the credential or the
mailbox (a credential scoped to one mailbox is held to that mailbox's limits as well), its domain, its customer,
the customer's reseller. A null limit means "no limit of its own" at that level; usage is counted at every
level all the same, so the panel's bars are right the moment a limit is set.
"""

import functools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Customer, Domain, Mailbox, Reseller, SendUsage, SmtpCredential
from accounts.normalize import domain_to_unicode

Scope = SendUsage.Scope
_TABLE = SendUsage._meta.db_table  # a plain identifier: needs no quoting in the SQL below
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Level:
    scope: str
    scope_id: int
    names: tuple[str, ...]  # what names it in its label: (local part, domain) of a mailbox, else (name,)
    per_hour: int | None
    per_day: int | None

    def limit(self, window: str) -> int | None:
        return self.per_hour if window == "hour" else self.per_day

    @property
    def label(self) -> str:
        """"mailbox info@alpha.test", "domain alpha.test", ...: worked out only for a refusal (a Unicode domain's
        form costs an IDNA decoding)."""
        return _label(self.scope, self.names)


class QuotaExceeded(Exception):
    """A sending limit has no room for the recipients asked; retry_at is when enough of it frees (None: never)."""

    def __init__(self, *, level: Level, limit: int, window: str, used: int, requested: int,
                 retry_at: datetime | None, now: datetime):
        self.level, self.limit, self.window = level, limit, window
        self.used, self.requested, self.retry_at, self.now = used, requested, retry_at, now
        super().__init__(str(self))

    def __str__(self):
        text = f"Sending limit reached: {self.limit} recipients per {self.window} for {self.level.label}"
        if self.retry_at is None:
            return f"{text}; this message has more recipients than the limit allows"
        retry_at = self.retry_at.astimezone(UTC)
        same_day = retry_at.date() == self.now.astimezone(UTC).date()
        return f"{text}; try again after {retry_at.strftime('%H:%M UTC' if same_day else '%Y-%m-%d %H:%M UTC')}"


def _minute(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def _db_time(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _window_start(now: datetime, window: str) -> datetime:
    # Buckets are minutes: the rolling hour is the current minute and the 59 before it.
    return _minute(now) - WINDOWS[window] + timedelta(minutes=1)


# --- the levels of a sender ----------------------------------------------------------------------------------

# Owners in the order they are locked (outermost first), so two senders never wait on each other crosswise.
_LOCK_ORDER = [Scope.RESELLER, Scope.CUSTOMER, Scope.DOMAIN, Scope.MAILBOX, Scope.CREDENTIAL]
_MODELS = {Scope.RESELLER: Reseller, Scope.CUSTOMER: Customer, Scope.DOMAIN: Domain, Scope.MAILBOX: Mailbox,
           Scope.CREDENTIAL: SmtpCredential}
# From the sender up: the levels of each kind of sender, innermost first.
_PATHS = {
    Scope.MAILBOX: [Scope.MAILBOX, Scope.DOMAIN, Scope.CUSTOMER, Scope.RESELLER],
    Scope.CREDENTIAL: [Scope.CREDENTIAL, Scope.MAILBOX, Scope.DOMAIN, Scope.CUSTOMER, Scope.RESELLER],
    # Mail a domain sends on its own: an alias's or a catch-all's forward to an external address.
    Scope.DOMAIN: [Scope.DOMAIN, Scope.CUSTOMER, Scope.RESELLER],
}


def _label(scope: str, names: tuple[str, ...]) -> str:
    if scope == Scope.MAILBOX:
        local_part, domain = names
        return f"mailbox {local_part}@{domain_to_unicode(domain)}"
    if scope == Scope.DOMAIN:
        return f"domain {domain_to_unicode(names[0])}"
    return f"{scope} {names[0]}"


# Table aliases and the columns that name each level in its label.
_ALIAS = {Scope.RESELLER: "r", Scope.CUSTOMER: "c", Scope.DOMAIN: "d", Scope.MAILBOX: "m", Scope.CREDENTIAL: "k"}
_NAME_COLUMNS = {Scope.RESELLER: ("r.name",), Scope.CUSTOMER: ("c.name",), Scope.DOMAIN: ("d.name",),
                 Scope.MAILBOX: ("m.local_part", "d.name"), Scope.CREDENTIAL: ("k.username",)}


@functools.cache
def _levels_sql(root: str, vendor: str, count: int) -> str:
    """A row for each of `count` senders of one kind: its id, then every level joined up to the reseller, in the
    order of _PATHS[root].

    Plain SQL: the relay runs it for every batch of messages, and the ORM took longer to build it than to run it.
    """
    table = {scope: connection.ops.quote_name(model._meta.db_table) for scope, model in _MODELS.items()}
    if root == Scope.MAILBOX:
        source = f"{table[Scope.MAILBOX]} m JOIN {table[Scope.DOMAIN]} d ON d.id = m.domain_id"
    elif root == Scope.DOMAIN:
        source = f"{table[Scope.DOMAIN]} d"
    else:  # a credential's mailbox, if it has one, is in the credential's domain
        source = (f"{table[Scope.CREDENTIAL]} k LEFT JOIN {table[Scope.MAILBOX]} m ON m.id = k.mailbox_id "
                  f"JOIN {table[Scope.DOMAIN]} d ON d.id = k.domain_id")
    source += (f" JOIN {table[Scope.CUSTOMER]} c ON c.id = d.customer_id"
               f" LEFT JOIN {table[Scope.RESELLER]} r ON r.id = c.reseller_id")
    columns = [f"{_ALIAS[root]}.id"]
    for scope in _PATHS[root]:
        alias = _ALIAS[scope]
        columns += [f"{alias}.id", f"{alias}.send_per_hour", f"{alias}.send_per_day", *_NAME_COLUMNS[scope]]
    return (f"SELECT {', '.join(columns)} FROM {source} "
            f"WHERE {_ALIAS[root]}.id IN ({', '.join(['%s'] * count)})")


def _read_levels_many(senders: list[tuple[str, int]]) -> dict[tuple[str, int], list[Level] | Exception]:
    """Every level of each sender (root: Scope.CREDENTIAL, Scope.MAILBOX or Scope.DOMAIN), innermost first; a
    sender that does not exist gets its DoesNotExist. One query for each kind of sender: a batch of the relay's
    messages from many customers' credentials took a round trip to the database for each sender."""
    queries, rows = _levels_queries(senders), []
    with connection.cursor() as cursor:
        for _, sql, pks in queries:
            cursor.execute(sql, pks)
            rows.append(cursor.fetchall())
    return _levels_found(queries, rows)


def _levels_queries(senders: list[tuple[str, int]]) -> list[tuple[str, str, list[int]]]:
    """_read_levels_many's queries: (root, SQL, its parameters) for each kind of sender."""
    roots: dict[str, list[int]] = {}
    for root, pk in dict.fromkeys(senders):
        roots.setdefault(root, []).append(pk)
    return [(root, _levels_sql(root, connection.vendor, len(pks)), pks) for root, pks in roots.items()]


def _levels_found(queries: list[tuple[str, str, list[int]]], rows: list[list[tuple]]
                  ) -> dict[tuple[str, int], list[Level] | Exception]:
    """_read_levels_many's answer from the rows of its queries (_levels_queries)."""
    found: dict[tuple[str, int], list[Level] | Exception] = {}
    for (root, _, pks), found_rows in zip(queries, rows):
        for row in found_rows:
            found[(root, row[0])] = _levels_of(root, row[1:])
        for pk in pks:
            if (root, pk) not in found:
                found[(root, pk)] = _MODELS[root].DoesNotExist(f"no {root} with id {pk}")
    return found


def _levels_of(root: str, row: tuple) -> list[Level]:
    levels, values = [], iter(row)
    for scope in _PATHS[root]:
        level_id, per_hour, per_day = next(values), next(values), next(values)
        names = tuple(next(values) for _ in _NAME_COLUMNS[scope])
        if level_id is None:  # a credential for a whole domain, a customer without reseller
            continue
        levels.append(Level(scope=scope, scope_id=level_id, names=names, per_hour=per_hour, per_day=per_day))
    return levels


def _read_levels(root: str, pk: int) -> list[Level]:
    """Every level of the sender, innermost first."""
    levels = _read_levels_many([(root, pk)])[(root, pk)]
    if isinstance(levels, Exception):
        raise levels
    return levels


# --- check and count -----------------------------------------------------------------------------------------


def _sums_sql(levels: list[Level], now: datetime) -> tuple[str, list]:
    # Plain SQL: this runs for every message the relay accepts, and the ORM's query building costs more than
    # the query itself.
    owners = " OR ".join(["(scope = %s AND scope_id = %s)"] * len(levels))
    params = [_db_time(_window_start(now, "hour"))]
    for level in levels:
        params += [level.scope, level.scope_id]
    params += [_db_time(_window_start(now, "day")), _db_time(_minute(now))]
    return (f"SELECT scope, scope_id, SUM(CASE WHEN minute >= %s THEN count ELSE 0 END), SUM(count) "
            f"FROM {_TABLE} WHERE ({owners}) AND minute >= %s AND minute <= %s GROUP BY scope, scope_id"), params


def _read_sums(levels: list[Level], rows) -> dict[tuple[str, int], dict[str, int]]:
    sums = {(level.scope, level.scope_id): {"hour": 0, "day": 0} for level in levels}
    for scope, scope_id, hour, day in rows:
        sums[(scope, scope_id)] = {"hour": int(hour or 0), "day": int(day or 0)}
    return sums


def _sums(levels: list[Level], now: datetime) -> dict[tuple[str, int], dict[str, int]]:
    sql, params = _sums_sql(levels, now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _read_sums(levels, cursor.fetchall())


def _lock_and_sum(levels: list[Level], now: datetime) -> tuple[dict[tuple[str, int], Level], dict]:
    """PostgreSQL: lock every level's row in one global order, read its limits under the lock, sum the windows.

    The order is outermost scope first, then by id, in every transaction (one sender's levels or a batch's),
    so two transactions never wait on each other crosswise: one statement a scope, whose rows are locked in the
    order it returns them (ORDER BY id: the lock is taken above the sort). One round trip: the statements go to
    the server as one batch (Django binds parameters on the client), which runs them in order, so the locks are
    taken in that order and the sums read after them.
    """
    sql, params = _lock_and_sum_sql(levels, now)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        results = [cursor.fetchall()]
        while cursor.nextset():
            results.append(cursor.fetchall())
    return _locked_and_summed(levels, results)


def _lock_scopes(levels: list[Level]) -> tuple[list[str], dict[str, list[Level]]]:
    by_scope: dict[str, list[Level]] = {}
    for level in levels:
        by_scope.setdefault(level.scope, []).append(level)
    return [scope for scope in _LOCK_ORDER if scope in by_scope], by_scope


def _lock_and_sum_sql(levels: list[Level], now: datetime) -> tuple[str, list]:
    """_lock_and_sum's statements, one after another in one text (parameters bound on the client)."""
    scopes, by_scope = _lock_scopes(levels)
    statements, params = [], []
    for scope in scopes:
        table = connection.ops.quote_name(_MODELS[scope]._meta.db_table)
        ids = sorted({level.scope_id for level in by_scope[scope]})
        statements.append(f"SELECT id, send_per_hour, send_per_day FROM {table} "
                          f"WHERE id IN ({', '.join(['%s'] * len(ids))}) ORDER BY id FOR UPDATE")
        params += ids
    sums_sql, sums_params = _sums_sql(levels, now)
    return "; ".join([*statements, sums_sql]), params + sums_params


def _locked_and_summed(levels: list[Level], results: list[list[tuple]]
                       ) -> tuple[dict[tuple[str, int], Level], dict]:
    """_lock_and_sum's answer from the rows of each of its statements."""
    scopes, by_scope = _lock_scopes(levels)
    locked = {}
    for scope, found in zip(scopes, results):
        rows = {pk: (per_hour, per_day) for pk, per_hour, per_day in found}
        for level in by_scope[scope]:
            if level.scope_id not in rows:
                raise _MODELS[scope].DoesNotExist(f"no {scope} with id {level.scope_id}")
            per_hour, per_day = rows[level.scope_id]
            locked[(scope, level.scope_id)] = replace(level, per_hour=per_hour, per_day=per_day)
    return locked, _read_sums(levels, results[len(scopes)])


def _retry_at(level: Level, window: str, *, needed: int, now: datetime, pending: int = 0) -> datetime:
    """When the oldest buckets of the window have moved out far enough to free `needed` recipients.

    pending: recipients this transaction has counted in the current minute but not written yet.
    """
    buckets = list(SendUsage.objects.filter(scope=level.scope, scope_id=level.scope_id,
                                            minute__gte=_window_start(now, window), minute__lte=_minute(now))
                   .order_by("minute").values_list("minute", "count"))
    if pending:
        buckets.append((_minute(now), pending))
    freed = 0
    for minute, count in buckets:
        freed += count
        if freed >= needed:
            return minute + WINDOWS[window]
    return _minute(now) + WINDOWS[window]  # not reached while the sums and buckets agree


def _usage_upsert(counts: dict[tuple[str, int], int], minute: datetime) -> tuple[str, list]:
    # One upsert for every level's bucket of this minute; the increment happens in the database.
    values = ", ".join(["(%s, %s, %s, %s)"] * len(counts))
    params = []
    for (scope, scope_id), recipients in counts.items():
        params += [scope, scope_id, _db_time(minute), recipients]
    return (f"INSERT INTO {_TABLE} (scope, scope_id, minute, count) VALUES {values} "
            f"ON CONFLICT (scope, scope_id, minute) DO UPDATE SET count = {_TABLE}.count + excluded.count"), params


class Counter:
    """Check-and-count for several messages in one transaction (the relay commits what arrived together at once).

    Created inside the transaction that stores the messages, with every sender that will ask: it locks all their
    levels' rows (PostgreSQL: SELECT ... FOR UPDATE in one global order, limits read under the lock; SQLite: the
    IMMEDIATE transaction's write lock) and sums their windows, in one round trip on PostgreSQL. `take` then
    decides each message in turn against those sums plus what this transaction already took, and `flush`
    writes the counts in one upsert. The locks last until the commit, so racing senders on any number of
    processes never overshoot a limit.
    """

    def __init__(self, senders: list[tuple[str, int]], *, now: datetime | None = None):
        if not connection.in_atomic_block:
            raise RuntimeError("quota counting must happen inside transaction.atomic()")
        self._found(_read_levels_many(senders), now)
        levels = self._levels()
        if levels and connection.features.has_select_for_update:
            self._locked(*_lock_and_sum(levels, self.now))
        elif levels:  # SQLite: the IMMEDIATE transaction already holds the database's write lock
            self._sums = _sums(levels, self.now)

    @classmethod
    async def on_loop(cls, conn, senders: list[tuple[str, int]], *, now: datetime | None = None) -> "Counter":
        """The same, from an event loop, through `conn` (a psycopg AsyncConnection to PostgreSQL with Django's
        adapters) inside a transaction of its own: the same statements, the same locks held until that
        transaction ends."""
        import psycopg  # PostgreSQL only: the relay's event loop

        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
            raise RuntimeError("quota counting must happen inside a transaction")
        counter = cls.__new__(cls)
        async with psycopg.AsyncClientCursor(conn) as cursor:
            queries, rows = _levels_queries(senders), []
            for _, sql, pks in queries:
                await cursor.execute(sql, pks)
                rows.append(await cursor.fetchall())
            counter._found(_levels_found(queries, rows), now)
            levels = counter._levels()
            if levels:
                await cursor.execute(*_lock_and_sum_sql(levels, counter.now))
                results = [await cursor.fetchall()]
                while cursor.nextset():
                    results.append(await cursor.fetchall())
                counter._locked(*_locked_and_summed(levels, results))
        return counter

    def _found(self, found: dict, now: datetime | None) -> None:
        self.now = now or timezone.now()
        self._paths: dict[tuple[str, int], list[Level]] = {}
        self._missing: dict[tuple[str, int], Exception] = {}  # senders deleted since they logged in
        for sender, levels in found.items():
            if isinstance(levels, ObjectDoesNotExist):
                self._missing[sender] = levels
            else:
                self._paths[sender] = levels
        self._sums = {}
        self._taken: dict[tuple[str, int], int] = {}

    def _levels(self) -> list[Level]:
        return list({(lv.scope, lv.scope_id): lv for path in self._paths.values() for lv in path}.values())

    def _locked(self, locked: dict, sums: dict) -> None:
        self._sums = sums
        self._paths = {key: [locked[(lv.scope, lv.scope_id)] for lv in path] for key, path in self._paths.items()}

    def take(self, sender: tuple[str, int], recipients: int) -> None:
        """Count `recipients` for this sender at every level if all have room, else raise QuotaExceeded."""
        if recipients < 1:
            raise ValueError("recipients must be at least 1")
        if sender in self._missing:
            raise self._missing[sender]
        refused = self._refusal(sender, recipients)
        if refused is not None:
            level, window, limit, used, pending = refused
            retry_at = None
            if recipients <= limit:
                retry_at = _retry_at(level, window, needed=used + recipients - limit, now=self.now, pending=pending)
            raise QuotaExceeded(level=level, limit=limit, window=window, used=used, requested=recipients,
                                retry_at=retry_at, now=self.now)
        self._count(sender, recipients)

    def take_if_room(self, sender: tuple[str, int], recipients: int) -> bool:
        """take() without a refusal's details (which need another query): False, nothing counted, when a level has
        no room or the sender is gone."""
        if recipients < 1:
            raise ValueError("recipients must be at least 1")
        if sender in self._missing or self._refusal(sender, recipients) is not None:
            return False
        self._count(sender, recipients)
        return True

    def _refusal(self, sender: tuple[str, int], recipients: int) -> tuple | None:
        """The first level and window without room for `recipients` (innermost first: the full level named is the
        one closest to the sender), with its limit, its use and this transaction's part of it; None if all have."""
        for level in self._paths[sender]:
            key = (level.scope, level.scope_id)
            pending = self._taken.get(key, 0)
            for window in WINDOWS:
                limit = level.limit(window)
                used = self._sums[key][window] + pending
                if limit is not None and used + recipients > limit:
                    return level, window, limit, used, pending
        return None

    def _count(self, sender: tuple[str, int], recipients: int) -> None:
        for level in self._paths[sender]:
            key = (level.scope, level.scope_id)
            self._taken[key] = self._taken.get(key, 0) + recipients

    def flush(self) -> None:
        usage = self.pending_usage()
        if usage is not None:
            with connection.cursor() as cursor:
                cursor.execute(*usage)

    def pending_usage(self) -> tuple[str, list] | None:
        """The statement that writes what was taken (one upsert), and its parameters, for the caller to run in
        this transaction, e.g. as part of the statement that stores the messages; None when nothing was taken."""
        if not self._taken:
            return None
        usage, self._taken = _usage_upsert(self._taken, _minute(self.now)), {}
        return usage


# --- reading usage -------------------------------------------------------------------------------------------


def usage_many(*, scope: str, scope_ids, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """{scope_id: {"hour": n, "day": n}} for many owners of one kind in one query (list pages)."""
    now = now or timezone.now()
    scope_ids = list(scope_ids)
    result = {pk: {"hour": 0, "day": 0} for pk in scope_ids}
    rows = (SendUsage.objects.filter(scope=scope, scope_id__in=scope_ids, minute__gte=_window_start(now, "day"),
                                     minute__lte=_minute(now))
            .values("scope_id")
            .annotate(day=Sum("count"), hour=Sum("count", filter=Q(minute__gte=_window_start(now, "hour")))))
    for row in rows:
        result[row["scope_id"]] = {"hour": row["hour"] or 0, "day": row["day"] or 0}
    return result


def usage(*, scope: str, scope_id: int, now: datetime | None = None) -> dict[str, int]:
    return usage_many(scope=scope, scope_ids=[scope_id], now=now)[scope_id]


def purge_old_usage(*, now: datetime | None = None) -> int:
    """Delete buckets that no window reads any more; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        deleted, _ = SendUsage.objects.filter(minute__lt=_window_start(now, "day")).delete()
    return deleted
