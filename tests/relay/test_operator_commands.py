"""The operator's shell for the queue and lockouts: queue_list, queue_retry, queue_cancel, lockout_list,
lockout_lift, run from their command lines on the test's database (in this process; one real process shows the exit
code reaching the shell); --json for scripts, readable text without, a message and a non-zero exit on errors, and
the same audit rows as support's actions in the panel."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from relay.models import AuthLockout, QueuedMessage, Recipient
from tests.support.commands import manage, manage_json, manage_process
from tests.support.delivery import queue

pytestmark = pytest.mark.django_db(transaction=True)


def _deferred(cast, subject: str) -> QueuedMessage:
    message = queue(cast.a, "bob@b.test", subject=subject, state=QueuedMessage.State.DEFERRED, attempts=2,
                    next_attempt_at=timezone.now() + timedelta(hours=1))
    message.recipients.update(state=Recipient.State.DEFERRED)
    return message


# --- the queue ----------------------------------------------------------------------------------------------


def test_queue_list_filters_by_state_and_customer(cast):
    first, second = _deferred(cast, "first"), _deferred(cast, "second")
    queue(cast.b, "carol@b.test", subject="other customer")
    result = manage_json("queue_list", "--state", "deferred", "--customer", cast.a.customer.name)
    assert [m["queue_id"] for m in result["messages"]] == [second.queue_id, first.queue_id]
    assert result["messages"][0]["recipients"] == 1 and result["messages"][0]["state"] == "deferred"
    text = manage("queue_list", "--customer", cast.b.customer.name).stdout
    assert "QUEUE ID" in text and cast.b.mailbox.address in text and first.queue_id not in text
    done = manage("queue_list", "--state", "lost", check=False)
    assert done.returncode != 0 and "invalid choice: 'lost'" in done.stderr


def test_queue_retry_one_message_is_audited_as_supports_retry(cast):
    message = _deferred(cast, "retry me")
    result = manage_json("queue_retry", message.queue_id)
    assert [m["queue_id"] for m in result["retried"]] == [message.queue_id]
    message.refresh_from_db()
    assert message.next_attempt_at <= timezone.now()
    entry = AuditEntry.objects.get(action="message.retry", object_id=str(message.pk))
    assert entry.actor is None and entry.actor_label == "system" and entry.customer_id == cast.a.customer.pk


def test_queue_retry_all_deferred(cast):
    messages = [_deferred(cast, f"m{i}") for i in range(3)]
    delivered = queue(cast.a, "bob@b.test", subject="done", state=QueuedMessage.State.DELIVERED)
    text = manage("queue_retry", "--all-deferred").stdout
    for message in messages:
        assert f"Message {message.queue_id} will be tried again now." in text
    assert delivered.queue_id not in text
    assert AuditEntry.objects.filter(action="message.retry").count() == 3


def test_queue_retry_refuses_what_is_not_waiting_and_bad_arguments(cast):
    delivered = queue(cast.a, "bob@b.test", subject="done", state=QueuedMessage.State.DELIVERED)
    done = manage("queue_retry", delivered.queue_id, check=False)
    assert done.returncode != 0 and "only queued, deferred or held messages can be retried" in done.stderr
    done = manage("queue_retry", check=False)
    assert done.returncode != 0 and "Name one message, or give --all-deferred." in done.stderr
    done = manage_process("queue_retry", "NOSUCHID", check=False)
    assert done.returncode != 0 and "No message NOSUCHID in the queue." in done.stderr
    assert not AuditEntry.objects.filter(action="message.retry").exists()


def test_queue_cancel_with_a_bounce_is_audited_with_its_reason(cast):
    message = _deferred(cast, "cancel me")
    result = manage_json("queue_cancel", str(message.pk), "--reason", "spam run", "--bounce")
    assert result["cancelled"]["state"] == "cancelled" and result["bounced"] is True
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.CANCELLED
    assert QueuedMessage.objects.filter(bounce_of=message, is_bounce=True).exists()
    entry = AuditEntry.objects.get(action="message.cancel", object_id=str(message.pk))
    assert entry.reason == "spam run" and entry.after["bounce"] is True

    done = manage("queue_cancel", message.queue_id, "--reason", "again", check=False)
    assert done.returncode != 0 and "is cancelled" in done.stderr
    done = manage("queue_cancel", message.queue_id, check=False)
    assert done.returncode != 0 and "--reason" in done.stderr


# --- lockouts -----------------------------------------------------------------------------------------------


def _lockout(value: str, kind=AuthLockout.Kind.ADDRESS, **fields) -> AuthLockout:
    now = timezone.now()
    fields.setdefault("locked_until", now + timedelta(minutes=15))
    return AuthLockout.objects.create(kind=kind, value=value, failures=10, created_at=now, **fields)


def test_lockout_list_shows_those_in_force(cast):
    active = _lockout("192.0.2.7")
    _lockout("198.51.100.1", locked_until=timezone.now() - timedelta(hours=1))
    result = manage_json("lockout_list")
    assert [lo["value"] for lo in result["lockouts"]] == ["192.0.2.7"] and result["lockouts"][0]["id"] == active.pk
    text = manage("lockout_list", "--recent").stdout
    assert "192.0.2.7" in text and "in force" in text and "198.51.100.1" in text and "ended" in text


def test_lockout_lift_by_value_is_audited_as_supports_lift(cast):
    lockout = _lockout("smtp-abc", kind=AuthLockout.Kind.USERNAME, customer=cast.a.customer)
    text = manage("lockout_lift", "smtp-abc", "--reason", "customer called").stdout
    assert text.strip() == "The lockout of smtp-abc is lifted."
    lockout.refresh_from_db()
    assert lockout.lifted_at is not None
    entry = AuditEntry.objects.get(action="lockout.lift", object_id=str(lockout.pk))
    assert entry.reason == "customer called" and entry.actor_label == "system"
    done = manage("lockout_lift", "smtp-abc", check=False)
    assert done.returncode != 0 and "No lockout in force for smtp-abc" in done.stderr
    assert manage_json("lockout_list")["lockouts"] == []

