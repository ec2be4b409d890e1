"""Less work for PostgreSQL at each stored message: fewer index entries, a cheaper compression of its bytes.

Measured by replaying the relay's accept (batches of 5 messages of 10 KB, one recipient each) against a scratch
database and reading the backend's CPU (bench/README.md, issue 20's last subsection). A message and its recipient
wrote 18 btree entries; 8 of them served no query: the queue id's and the recipient address's second index for
LIKE 'x%' (PostgreSQL makes one beside a unique or indexed CharField), the address's own (it is searched by
substring only, through its trigram index), the customer's (the (customer, -created_at) index serves a lookup by
customer alone), and a NULL entry for each message that is no bounce and each recipient without a mailbox or a
forwarder, which the indexes of those keys now leave out; so do the indexes of a message's credential, mailbox and
domain (an inbound message has none of them unless forwarded, a mailbox's own login no credential). A message's
bytes are compressed with lz4 instead of pglz.

On PostgreSQL the indexes are dropped and created by name, and the queue id's unique constraint renamed: Django's
own steps for these field changes drop and re-add each foreign key, which checks every row of the message log
under a lock that stops the relay's inserts meanwhile.
"""

import django.db.models.deletion
from django.db import migrations, models

import relay.models


def _unindexed_key(model_name: str, name: str, to: str, related_name: str) -> migrations.AlterField:
    return migrations.AlterField(model_name=model_name, name=name, field=models.ForeignKey(
        blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name=related_name,
        to=to))


_TABLE_CHANGES = [
    _unindexed_key('queuedmessage', 'bounce_of', 'relay.queuedmessage', 'bounces'),
    _unindexed_key('queuedmessage', 'customer', 'accounts.customer', 'messages'),
    _unindexed_key('queuedmessage', 'credential', 'accounts.smtpcredential', 'messages'),
    _unindexed_key('queuedmessage', 'domain', 'accounts.domain', 'messages'),
    _unindexed_key('queuedmessage', 'mailbox', 'accounts.mailbox', 'messages'),
    migrations.AlterField(
        model_name='queuedmessage',
        name='queue_id',
        field=models.CharField(default=relay.models.new_queue_id, max_length=20),
    ),
    migrations.AddConstraint(
        model_name='queuedmessage',
        constraint=models.UniqueConstraint(fields=('queue_id',), name='msg_queue_id_unique'),
    ),
    migrations.AlterField(
        model_name='recipient',
        name='address',
        field=models.CharField(max_length=320),
    ),
    _unindexed_key('recipient', 'forward_domain', 'accounts.domain', '+'),
    _unindexed_key('recipient', 'forward_mailbox', 'accounts.mailbox', '+'),
    _unindexed_key('recipient', 'mailbox', 'accounts.mailbox', '+'),
]

# (model, field) whose single-column indexes go: on PostgreSQL a CharField's LIKE index as well.
_UNINDEXED = [("queuedmessage", "bounce_of"), ("queuedmessage", "customer"), ("queuedmessage", "credential"),
              ("queuedmessage", "domain"), ("queuedmessage", "mailbox"), ("queuedmessage", "queue_id"),
              ("recipient", "address"), ("recipient", "forward_domain"), ("recipient", "forward_mailbox"),
              ("recipient", "mailbox")]
_LIKE_INDEXED = {("queuedmessage", "queue_id"), ("recipient", "address")}
_QUEUE_ID_UNIQUE = "msg_queue_id_unique"


class _NotOnPostgreSQL(migrations.SeparateDatabaseAndState):
    """Its database operations everywhere but on PostgreSQL (SQLite: Django's own, which rebuild the table)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def _single_column(schema_editor, table: str, column: str, **kind) -> list[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [name for name, info in constraints.items() if info["columns"] == [column] and not info["primary_key"]
            and all(info[key] == value for key, value in kind.items())]


def _postgresql_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, field_name in _UNINDEXED:
        model = apps.get_model("relay", model_name)
        column = model._meta.get_field(field_name).column
        for name in _single_column(schema_editor, model._meta.db_table, column, index=True, unique=False):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))
    model = apps.get_model("relay", "queuedmessage")
    table = model._meta.db_table
    (unique,) = _single_column(schema_editor, table, "queue_id", unique=True)
    schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} RENAME CONSTRAINT "
                          f"{schema_editor.quote_name(unique)} TO {schema_editor.quote_name(_QUEUE_ID_UNIQUE)}")


def _postgresql_indexes_back(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, field_name in _UNINDEXED:
        model = apps.get_model("relay", model_name)
        field = model._meta.get_field(field_name)
        if field_name != "queue_id":
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
        if (model_name, field_name) in _LIKE_INDEXED:
            schema_editor.execute(schema_editor._create_like_index_sql(model, field))
    table = apps.get_model("relay", "queuedmessage")._meta.db_table
    schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} RENAME CONSTRAINT "
                          f"{schema_editor.quote_name(_QUEUE_ID_UNIQUE)} TO "
                          f"{schema_editor.quote_name(table + '_queue_id_key')}")


def _where_set(model_name: str, field: str, name: str) -> migrations.AddIndex:
    return migrations.AddIndex(model_name=model_name, index=models.Index(
        condition=models.Q((f'{field}__isnull', False)), fields=[field], name=name))


def _content_compression(method):
    def run(apps, schema_editor):
        # PostgreSQL 14+ built with lz4 (Debian's and the official images are); elsewhere nothing to do. Only new
        # values are compressed with it: rows already stored keep theirs, and both stay readable.
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
            row = cursor.fetchone()
        if row is None or method not in row[0]:
            return
        schema_editor.execute(f"ALTER TABLE relay_queuedmessage ALTER COLUMN content SET COMPRESSION {method}")
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0014_i18ncore'),
        ('relay', '0007_mx18'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=_TABLE_CHANGES,
            database_operations=[
                _NotOnPostgreSQL(database_operations=_TABLE_CHANGES),
                migrations.RunPython(_postgresql_indexes, _postgresql_indexes_back),
            ],
        ),
        _where_set('queuedmessage', 'domain', 'msg_domain_set'),
        _where_set('queuedmessage', 'credential', 'msg_credential_set'),
        _where_set('queuedmessage', 'mailbox', 'msg_mailbox_set'),
        _where_set('queuedmessage', 'bounce_of', 'msg_bounce_of_set'),
        _where_set('recipient', 'mailbox', 'rcpt_mailbox_set'),
        _where_set('recipient', 'forward_domain', 'rcpt_forward_domain_set'),
        _where_set('recipient', 'forward_mailbox', 'rcpt_forward_mailbox_set'),
        migrations.RunPython(_content_compression("lz4"), _content_compression("pglz"), elidable=True),
    ]
