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


def index_definitions(model) -> dict[str, str]:
    """Each index of the model's table and the SQL that defines it."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        else:
            cursor.execute("SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' AND tbl_name = %s",
                           [table])
        return dict(cursor.fetchall())


# Foreign keys unset on many rows: most messages are no bounce; an inbound message has no credential, mailbox or
# (unless forwarded) domain; an outbound recipient has no mailbox and no forwarder.
MOSTLY_UNSET = [(QueuedMessage, "bounce_of_id"), (QueuedMessage, "credential_id"), (QueuedMessage, "mailbox_id"),
                (QueuedMessage, "domain_id"), (Recipient, "mailbox_id"), (Recipient, "forward_domain_id"),
                (Recipient, "forward_mailbox_id")]


@pytest.mark.parametrize("model, column", MOSTLY_UNSET)
def test_a_mostly_unset_foreign_key_is_indexed_only_where_set(model, column):
    """Each stored row wrote an entry in a full index of the key, NULL or not, that no lookup reads."""
    on_column = [(name, sql) for name, cols in indexed_columns(model).items() if cols == [column]
                 for sql in [index_definitions(model).get(name, "")]]
    assert len(on_column) == 1, on_column
    assert on_column[0][1].replace('"', "").replace("(", "").replace(")", "").endswith(f"WHERE {column} IS NOT NULL")


def test_the_message_log_keeps_no_index_that_no_query_reads():
    message_indexes = list(indexed_columns(QueuedMessage).values())
    assert ["customer_id"] not in message_indexes, "(customer, -created_at) serves a lookup by customer alone"
    assert ["customer_id", "created_at"] in message_indexes
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, QueuedMessage._meta.db_table)
    on_queue_id = [c for c in constraints.values() if c["columns"] == ["queue_id"]]
    assert len(on_queue_id) == 1 and on_queue_id[0]["unique"], "the unique constraint only, no second index for LIKE"
    # The recipient's address is searched by substring only, through the trigram index of UPPER(address).
    assert not [name for name, sql in index_definitions(Recipient).items()
                if "address" in sql and "upper" not in sql.lower()]


def test_a_queue_id_is_still_unique():
    from django.db import IntegrityError, transaction

    QueuedMessage.objects.create(queue_id="SAMEID", mail_from="a@a.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        QueuedMessage.objects.create(queue_id="SAMEID", mail_from="b@a.test")


@pytest.mark.parametrize("model, column", MOSTLY_UNSET)
def test_a_lookup_by_a_mostly_unset_key_reads_its_partial_index(model, column):
    """An equality on the key implies it is set: the on_delete lookups and the filters by mailbox use the index."""
    query = model.objects.filter(**{column: 12345}).values("id").query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # the table is empty: make the planner show its choice
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
    (name,) = [name for name, cols in indexed_columns(model).items() if cols == [column]]
    assert name in plan, plan


def test_a_messages_bytes_are_compressed_with_lz4_on_postgresql():
    """lz4 costs PostgreSQL a fraction of pglz's CPU for each message stored (bench/README.md, issue 20)."""
    content = b"The quick brown fox jumps over the lazy dog.\r\n" * 300
    message = QueuedMessage.objects.create(mail_from="a@a.test", content=content)
    assert bytes(QueuedMessage.objects.get(pk=message.pk).content) == content
    if connection.vendor != "postgresql":
        return  # SQLite stores the bytes as they are
    with connection.cursor() as cursor:
        cursor.execute("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
        expected = "lz4" if "lz4" in cursor.fetchone()[0] else "pglz"  # a PostgreSQL built without lz4 keeps pglz
        cursor.execute(f"SELECT pg_column_compression(content) FROM {QueuedMessage._meta.db_table} WHERE id = %s",
                       [message.pk])
        assert cursor.fetchone()[0] == expected
