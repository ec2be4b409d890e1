"""Support's retry and cancel, releasing held mail, the sweep and the retention purge."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEntry
from relay.delivery import tasks
from relay.models import QueuedMessage
from relay.panel import services
from tests.support.delivery import handed_over, queue

pytestmark = pytest.mark.django_db
State = QueuedMessage.State


def test_retry_now_makes_a_deferred_message_due_and_is_audited(cast, django_capture_on_commit_callbacks):
    message = queue(cast.a, "bob@b.test", state=State.DEFERRED, attempts=2,
                    next_attempt_at=timezone.now() + timedelta(hours=1))
    with handed_over() as delay, \
            django_capture_on_commit_callbacks(execute=True):
        services.message_retry_now(actor=cast.support, message=message, client_ip="192.0.2.1")
    delay.assert_called_once_with([message.pk])
    message.refresh_from_db()
    assert message.next_attempt_at <= timezone.now() and message.state == State.DEFERRED
    entry = AuditEntry.objects.get(action="message.retry")
    assert entry.actor == cast.support and entry.client_ip == "192.0.2.1" and entry.customer == cast.a.customer


@pytest.mark.parametrize("bounce", [True, False])
def test_cancel_bounces_or_discards(cast, bounce):
    message = queue(cast.a, "bob@b.test", "carol@b.test", state=State.DEFERRED)
    services.message_cancel(actor=cast.support, message=message, bounce=bounce, reason="spam complaint")
    message.refresh_from_db()
    assert message.state == State.CANCELLED and message.state_reason == "spam complaint" and message.finished_at
    assert set(message.recipients.values_list("state", flat=True)) == {"cancelled"}
    assert message.bounces.count() == (1 if bounce else 0)
    if bounce:
        content = bytes(message.bounces.get().content)
        assert b"spam complaint" in content and b"Final-Recipient: rfc822; carol@b.test" in content
    entry = AuditEntry.objects.get(action="message.cancel")
    assert entry.reason == "spam complaint" and entry.after["bounce"] is bounce and entry.before["state"] == "deferred"


def test_cancel_needs_a_reason_and_a_waiting_message(cast):
    message = queue(cast.a, "bob@b.test", state=State.DELIVERED)
    with pytest.raises(ValidationError, match="Say why"):
        services.message_cancel(actor=cast.support, message=message, bounce=True, reason=" ")
    with pytest.raises(ValidationError, match="only queued, deferred or held"):
        services.message_cancel(actor=cast.support, message=message, bounce=True, reason="why")
    with pytest.raises(ValidationError):
        services.message_retry_now(actor=cast.support, message=message)
    assert not AuditEntry.objects.filter(action__startswith="message.").exists()


def test_release_held_enqueues_each_message(cast, django_capture_on_commit_callbacks):
    held = [queue(cast.a, "bob@b.test", state=State.HELD, state_reason="Customer suspended"),
            queue(cast.a, "bob@b.test", state=State.HELD, attempts=1)]
    other = queue(cast.b, "bob@b.test", state=State.HELD)
    with handed_over() as delay, \
            django_capture_on_commit_callbacks(execute=True):
        assert tasks.release_held(cast.a.customer.pk) == 2
    delay.assert_called_once()
    assert sorted(delay.call_args.args[0]) == sorted(m.pk for m in held)
    assert [QueuedMessage.objects.get(pk=m.pk).state for m in held] == [State.QUEUED, State.DEFERRED]
    assert QueuedMessage.objects.get(pk=other.pk).state == State.HELD


def test_sweep_hands_due_messages_to_the_workers(cast):
    due = queue(cast.a, "bob@b.test", state=State.DEFERRED, attempts=1)
    queue(cast.a, "bob@b.test", state=State.DEFERRED, next_attempt_at=timezone.now() + timedelta(hours=1))
    with handed_over() as delay:
        assert tasks.sweep_queue() == 1
    delay.assert_called_once_with([due.pk])


def test_sweep_releases_mail_held_for_a_customer_restored_meanwhile(cast):
    from accounts.models import Customer, Status

    held = queue(cast.a, "bob@b.test", state=State.HELD, state_reason="Customer suspended")
    still = queue(cast.b, "bob@b.test", state=State.HELD, state_reason="Customer suspended")
    Customer.objects.filter(pk=cast.b.customer.pk).update(status=Status.SUSPENDED)
    with handed_over():
        tasks.sweep_queue()
    assert QueuedMessage.objects.get(pk=held.pk).state == State.QUEUED
    assert QueuedMessage.objects.get(pk=still.pk).state == State.HELD


def test_purge_drops_old_contents_and_keeps_the_log(cast, settings):
    settings.MESSAGE_RETENTION_DAYS = 7
    old = queue(cast.a, "bob@b.test", state=State.DELIVERED, finished_at=timezone.now() - timedelta(days=8))
    recent = queue(cast.a, "bob@b.test", state=State.DELIVERED, finished_at=timezone.now() - timedelta(days=6))
    waiting = queue(cast.a, "bob@b.test", state=State.DEFERRED, created_at=timezone.now() - timedelta(days=8))
    assert tasks.purge_old_messages() == 1
    old.refresh_from_db()
    assert old.content is None and old.purged_at and old.recipients.count() == 1
    assert all(QueuedMessage.objects.get(pk=m.pk).content for m in (recent, waiting))
