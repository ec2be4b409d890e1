"""Model rows in and out of plain SQL, for the statements that run once or more per message.

The ORM builds each statement anew: a bulk_create compiles its INSERT, a raw() query works out which column is
which field and its converters, every time. On the relay's accept path and a worker's claim that cost more
interpreter time than the database's own work for the statement. Here the column plan is worked out once per
model and set of columns; each value still goes through its field's own conversions, both ways.
"""

from collections.abc import Callable
from functools import lru_cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Model


@lru_cache(maxsize=64)
def _read_plan(vendor: str, model: type[Model], columns: tuple[str, ...]):
    """For a result's columns: the model's field names and their positions, per position the converters, and
    the other columns (set as attributes, e.g. joined values)."""
    position_of = {column: position for position, column in enumerate(columns)}
    names, positions, converters = [], [], []
    for field in model._meta.concrete_fields:  # Model.from_db takes them in the model's order
        if field.column not in position_of:
            continue
        position = position_of.pop(field.column)
        names.append(field.attname)
        positions.append(position)
        col = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((position, col, found))
    extras = list(position_of.items())
    if model._meta.pk.attname not in names:
        raise ValueError(f"a query for {model.__name__} must return its primary key")
    return names, positions, extras, converters


def fetch(model: type[Model], sql: str, params: list) -> list:
    """Instances of `model` from a query returning its columns (and possibly others)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = tuple(column[0] for column in cursor.description)
        rows = cursor.fetchall()
    names, positions, extras, converters = _read_plan(connection.vendor, model, columns)
    instances = []
    for row in rows:
        if converters:
            row = list(row)
            for position, col, functions in converters:
                value = row[position]
                for function in functions:
                    value = function(value, col, connection)
                row[position] = value
        instance = model.from_db(connection.alias, names, [row[p] for p in positions])
        for column, position in extras:
            setattr(instance, column, row[position])
        instances.append(instance)
    return instances


def _binding_cursor(*, numbered: bool = False):
    """On PostgreSQL a cursor of the same connection (and transaction) that sends the values apart from the
    statement (server-side binding), unprepared (safe behind a transaction-pooling proxy): a message's bytes go
    as they are, where Django's client-side binding spells each one out in the SQL text (20 KB of hex, escaped
    and parsed, for a 10 KB message). `numbered`: one that takes PostgreSQL's own $1, $2, ... as they are.
    Elsewhere Django's own cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    return _unprepared_cursor_class(numbered)(connection.connection)


@lru_cache(maxsize=2)
def _unprepared_cursor_class(numbered: bool):
    class UnpreparedCursor(psycopg.RawCursor if numbered else psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            return super().execute(query, params, prepare=False, **kwargs)

    return UnpreparedCursor


@lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """The statement with its %s placeholders (its only %) numbered $1, $2, ... for PostgreSQL itself. psycopg's
    own translation parses the text with a regular expression a placeholder, and remembers the result only for
    statements of up to 50 parameters: for a batch of messages stored in one statement (a few hundred
    parameters) it was a fifth of a write lane's interpreter time. Remembered: batches of the same shape (as many
    messages, as many recipients) have the same text."""
    pieces = sql.split("%s")
    return "".join(f"{piece}${n}" for n, piece in enumerate(pieces[:-1], 1)) + pieces[-1]


def insert_values(objs: list[Model], *, computed: dict[str, Callable[[Model], tuple[str, list]]] | None = None
                  ) -> tuple[str, list]:
    """`INSERT INTO <table> (<columns>) VALUES ...` for the instances (of one model) and its parameters, to be part
    of a larger statement (PostgreSQL's data-modifying WITH). `computed` gives a field (by attname), for each
    instance, an SQL expression and its parameters in place of its value: e.g. a key that an earlier part of the
    same statement returns."""
    model = type(objs[0])
    computed = computed or {}
    fields, table, columns = _insert_plan(connection.vendor, model)
    real = _real_connection()
    rows, params = [], []
    for obj in objs:
        row = []
        for field in fields:
            if field.attname in computed:
                sql, values = computed[field.attname](obj)
                row.append(sql)
                params += values
            else:
                row.append("%s")
                value = getattr(obj, field.attname)
                params.append(value if type(value) is UNCHANGED.get(type(field))
                              else field.get_db_prep_save(value, real))
        rows.append("(" + ", ".join(row) + ")")
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join(rows)}", params


# Field classes whose conversion for the database gives a value of this exact type back as it is (a str stays the
# str, True stays True): skipped for such values, half the conversions of a message's row. Subclasses, which may
# convert, are not in it (tests/relay/test_sqlrows.py checks the claim).
UNCHANGED: dict[type, type] = {models.CharField: str, models.TextField: str, models.BooleanField: bool}


@lru_cache(maxsize=64)
def _insert_plan(vendor: str, model: type[Model]) -> tuple[list, str, str]:
    """The fields an INSERT of `model` sets (all but its primary key), its table and its columns, quoted: worked out
    once (each quote_name through django.db.connection's proxy was a thread-local lookup, a third of building a
    batch's rows)."""
    fields = [field for field in model._meta.concrete_fields if field is not model._meta.pk]
    quote = connection.ops.quote_name
    return fields, quote(model._meta.db_table), ", ".join(quote(field.column) for field in fields)


def _real_connection():
    """The connection behind django.db.connection, a proxy that finds it anew (a thread-local lookup) on every
    attribute read: the field conversions read it several times for each value, half their time for a message's
    row of 33 columns."""
    return connections[DEFAULT_DB_ALIAS]


def execute(sql: str, params: list) -> list[tuple]:
    """Run one statement whose only % are its %s placeholders with the values bound apart from it (as insert()
    does: a message's bytes as they are) and return its rows."""
    if connection.vendor == "postgresql":
        sql = numbered(sql)
    with connection.wrap_database_errors, _binding_cursor(numbered=True) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def insert(objs: list[Model], *, return_ids: bool = False) -> None:
    """INSERT the instances (of one model), in as few statements as the database takes parameters for;
    `return_ids` sets each one's primary key from the database (RETURNING: PostgreSQL, SQLite 3.35+)."""
    if not objs:
        return
    model = type(objs[0])
    fields, table, columns = _insert_plan(connection.vendor, model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    size = max(connection.ops.bulk_batch_size(fields, objs), 1)
    returning = f" RETURNING {connection.ops.quote_name(model._meta.pk.column)}" if return_ids else ""
    real = _real_connection()
    # Django's errors (IntegrityError, OperationalError, ...) whichever cursor runs the statement.
    with connection.wrap_database_errors, _binding_cursor() as cursor:
        for start in range(0, len(objs), size):
            chunk = objs[start:start + size]
            params = [field.get_db_prep_save(getattr(obj, field.attname), real) for obj in chunk for field in fields]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}{returning}",
                           params)
            if return_ids:
                # Keys are handed out in the order the rows are inserted: sorted, they match the VALUES order
                # whatever order RETURNING lists them in (which SQLite leaves undefined).
                for obj, pk in zip(chunk, sorted(pk for (pk,) in cursor.fetchall())):
                    obj.pk = pk
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


def insert_with_children(parents: list[Model], children: list[list[Model]], *, link: str) -> None:
    """The `parents` (of one model), then each one's `children` (of one model) with their `link` (the foreign key's
    attname) set to it: two INSERTs, where insert_in_one_statement cannot serve (not PostgreSQL, or a batch with
    more values than one statement takes)."""
    insert(parents, return_ids=True)
    rows = [row for rows_of in children for row in rows_of]
    if rows:
        relation = rows[0]._meta.get_field(link).name
        for parent, rows_of in zip(parents, children):
            for row in rows_of:
                setattr(row, relation, parent)
    insert(rows)


# What PostgreSQL takes in one statement ($1 ... $65535).
ONE_STATEMENT_PARAMETERS = 65_535


def insert_in_one_statement(parents: list[Model], children: list[list[Model]], *, key: str, link: str,
                            more: list[tuple[str, list]] = ()) -> bool:
    """PostgreSQL: the `parents` (of one model) and each one's `children` (of one model) in one statement
    (data-modifying WITH), where a transaction of separate statements waits for the database once for each. A
    child's `link` (its foreign key's attname) is its parent's primary key, found by the parent's unique field
    `key`; `more` are further parts of the same WITH, ("name AS (statement)", parameters), which may read the
    inserted parents as `m`. Sets the parents' primary keys and the children's parent. False (nothing written)
    when the batch has more values than one statement takes."""
    statement = one_statement(parents, children, key=key, link=link, more=more)
    if statement is None:
        return False
    sql, params = statement
    set_keys(parents, children, execute(sql, params), key=key, link=link)
    return True


def one_statement(parents: list[Model], children: list[list[Model]], *, key: str, link: str,
                  more: list[tuple[str, list]] = ()) -> tuple[str, list] | None:
    """insert_in_one_statement's statement and parameters (placeholders %s), built without the database: its rows
    are to be given to set_keys. None when the batch has more values than one statement takes."""
    model = type(parents[0])
    pk, key_column = model._meta.pk, model._meta.get_field(key).column
    parents_sql, params = insert_values(parents)
    parts = [f"m AS ({parents_sql} RETURNING {connection.ops.quote_name(pk.column)}, "
             f"{connection.ops.quote_name(key_column)})"]
    rows = [row for rows_of in children for row in rows_of]
    if rows:
        keys = {id(row): getattr(parent, key) for parent, rows_of in zip(parents, children) for row in rows_of}
        parent_sql = (f"(SELECT {connection.ops.quote_name(pk.column)} FROM m "
                      f"WHERE {connection.ops.quote_name(key_column)} = %s)")
        rows_sql, values = insert_values(rows, computed={link: lambda row: (parent_sql, [keys[id(row)]])})
        parts.append(f"r AS ({rows_sql})")
        params += values
    for part, values in more:
        parts.append(part)
        params += values
    if len(params) > ONE_STATEMENT_PARAMETERS:
        return None
    return f"WITH {', '.join(parts)} SELECT * FROM m", params


def set_keys(parents: list[Model], children: list[list[Model]], returned: list[tuple], *, key: str,
             link: str) -> None:
    """After one_statement's statement ran: the parents' primary keys from its rows, and each child's parent."""
    primary_keys = {found_key: found_pk for found_pk, found_key in returned}
    rows = [row for rows_of in children for row in rows_of]
    relation = rows[0]._meta.get_field(link).name if rows else None
    alias = connection.alias  # read once: each read of the proxy's attributes is a thread-local lookup
    for parent, rows_of in zip(parents, children):
        parent.pk = primary_keys[getattr(parent, key)]
        parent._state.adding, parent._state.db = False, alias
        for row in rows_of:
            setattr(row, relation, parent)
            row._state.adding, row._state.db = False, alias
