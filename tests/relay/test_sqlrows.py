"""Plain-SQL rows (relay.sqlrows): what the ORM would have written and read, field conversions included."""

from datetime import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from relay import sqlrows
from relay.models import QueuedMessage, Recipient

pytestmark = pytest.mark.django_db


def message(n: int) -> QueuedMessage:
    return QueuedMessage(mail_from=f"s{n}@a.test", subject=f"m{n}", content=b"\x00\xffbody %d" % n, size=7,
                         client_ip="2001:db8::1", created_at=timezone.now(), next_attempt_at=timezone.now())


def test_insert_sets_keys_in_order_and_stores_what_the_orm_would():
    messages = [message(n) for n in range(3)]
    sqlrows.insert(messages, return_ids=True)
    assert all(m.pk and not m._state.adding for m in messages)
    for m in messages:
        stored = QueuedMessage.objects.get(pk=m.pk)
        assert (stored.subject, bytes(stored.content), stored.client_ip, stored.queue_id) == (
            m.subject, m.content, "2001:db8::1", m.queue_id)
        assert stored.created_at == m.created_at and stored.is_bounce is False and stored.state == "queued"


def test_insert_splits_what_is_more_than_one_statement_takes():
    [owner] = [message(0)]
    sqlrows.insert([owner], return_ids=True)
    recipients = [Recipient(message=owner, address=f"r{n}@b.test") for n in range(700)]  # 5 600 parameters
    sqlrows.insert(recipients)
    assert list(owner.recipients.values_list("address", flat=True)) == [f"r{n}@b.test" for n in range(700)]


def test_fetch_converts_each_field_and_keeps_other_columns():
    original = message(1)
    sqlrows.insert([original], return_ids=True)
    table = QueuedMessage._meta.db_table
    [got] = sqlrows.fetch(QueuedMessage, f"SELECT 'extra' AS note, m.* FROM {table} m WHERE m.id = %s", [original.pk])
    assert got.pk == original.pk and got.note == "extra" and not got._state.adding
    assert isinstance(got.created_at, datetime) and got.created_at == original.created_at
    assert got.is_bounce is False and bytes(got.content) == original.content and got.subject == "m1"
    with pytest.raises(ValueError, match="primary key"):
        sqlrows.fetch(QueuedMessage, f"SELECT subject FROM {table}", [])


def test_a_refused_insert_is_django_s_error_and_stores_nothing():
    """What the relay's error handling recognises (a database error), on either database's cursor."""
    owner = message(2)
    sqlrows.insert([owner], return_ids=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        sqlrows.insert([Recipient(message=owner, address="ok@b.test"), Recipient(message=owner, address=None)])
    assert not owner.recipients.exists()


def test_placeholders_are_numbered_for_postgresql_itself():
    assert sqlrows.numbered("SELECT %s, f(%s::int[]) FROM t WHERE a = %s") == "SELECT $1, f($2::int[]) FROM t WHERE a = $3"
    assert sqlrows.numbered("SELECT 1") == "SELECT 1"


@pytest.mark.parametrize("field_class, value", [(cls, sample) for cls, kind in sqlrows.UNCHANGED.items()
                                                for sample in {str: ["", "abc", "ünï"], bool: [True, False]}[kind]])
def test_values_left_unconverted_are_those_their_fields_return_as_they_are(field_class, value):
    from django.db import connection

    field = field_class(max_length=20) if field_class is not sqlrows.models.BooleanField else field_class()
    assert type(value) is sqlrows.UNCHANGED[field_class]
    assert field.get_db_prep_save(value, connection) is value
