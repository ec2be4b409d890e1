"""How the queue's tables are stored: the indexes a delivery step has to rewrite, and room for in-place updates."""

import pytest
from django.db import connection

from relay.models import QueuedMessage, Recipient

pytestmark = pytest.mark.django_db


def indexed_columns(model) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {name: c["columns"] for name, c in constraints.items() if c["index"]}


def test_state_and_next_attempt_are_indexed_only_together():
    columns = list(indexed_columns(QueuedMessage).values())
    assert ["state", "next_attempt_at"] in columns, "the due scan of the queue"
    assert ["state"] not in columns and ["next_attempt_at"] not in columns, \
        "an index of its own on a column each delivery changes is one more entry written per change"


def test_lease_and_recipient_outcome_columns_are_not_indexed():
    """So that a claim and a recipient's outcome can be updated in place (PostgreSQL's HOT)."""
    message_columns = {c for cols in indexed_columns(QueuedMessage).values() for c in cols}
    assert not message_columns & {"lease_owner", "lease_until", "attempts"}
    recipient_columns = {c for cols in indexed_columns(Recipient).values() for c in cols}
    assert not recipient_columns & {"state", "last_code", "last_status", "last_reply", "remote_host", "delivered_at"}


def test_postgresql_leaves_room_on_each_page_for_updated_rows():
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # SQLite rewrites a row in place whatever its indexes: nothing to set.
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [QueuedMessage._meta.db_table])
            assert "fillfactor" not in cursor.fetchone()[0]
            return
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname IN (%s, %s)",
                       [QueuedMessage._meta.db_table, Recipient._meta.db_table])
        options = dict(cursor.fetchall())
    assert options == {QueuedMessage._meta.db_table: ["fillfactor=80"], Recipient._meta.db_table: ["fillfactor=80"]}
