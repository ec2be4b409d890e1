"""Holding what a leaked login queued: on revocation or suspension with `hold`, released or cancelled by support."""

from unittest import mock

import pytest

from accounts.models import AuditEntry
from accounts.services.credentials import credential_create, credential_revoke
from accounts.services.suspension import restore, suspend
from relay.delivery import tasks
from relay.models import QueuedMessage, Recipient
from relay.panel import services
from tests.support.delivery import handed_over, queue

pytestmark = pytest.mark.django_db
State = QueuedMessage.State


def revoke_with_hold(credential, captured):
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, captured(execute=True):
        credential_revoke(actor=None, credential=credential, hold=True)
    send_task.assert_called_once()
    name, kwargs = send_task.call_args.args[0], send_task.call_args.kwargs["kwargs"]
    assert name == "relay.tasks.hold_queued"
    return tasks.hold_queued(**kwargs)


def test_revoking_with_hold_holds_what_the_credential_queued_and_not_yet_delivered(
        cast, django_capture_on_commit_callbacks):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    waiting = [queue(cast.a, "bob@b.test", credential=credential),
               queue(cast.a, "bob@b.test", credential=credential, state=State.DEFERRED, attempts=1)]
    delivered = queue(cast.a, "bob@b.test", credential=credential, state=State.DELIVERED)
    mailbox_login = queue(cast.a, "bob@b.test")  # the mailbox's own login: not the leaked credential
    assert revoke_with_hold(credential, django_capture_on_commit_callbacks) == 2
    states = dict(QueuedMessage.objects.values_list("pk", "state"))
    assert [states[m.pk] for m in waiting] == [State.HELD, State.HELD]
    assert (states[delivered.pk], states[mailbox_login.pk]) == (State.DELIVERED, State.QUEUED)
    held = QueuedMessage.objects.get(pk=waiting[0].pk)
    assert held.state_reason == f"Held for support: credential {credential.username} revoked"
    assert AuditEntry.objects.get(action="messages.hold").after == {"held": 2}


def test_mail_held_for_a_leaked_login_waits_for_support_not_for_a_restore(cast, django_capture_on_commit_callbacks):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    first, second = (queue(cast.a, "bob@b.test", credential=credential) for _ in range(2))
    suspended_mail = queue(cast.a, "bob@b.test", state=State.HELD, state_reason="Customer suspended: unpaid")
    revoke_with_hold(credential, django_capture_on_commit_callbacks)
    with handed_over() as delay, django_capture_on_commit_callbacks(execute=True):
        assert tasks.release_held(cast.a.customer.pk) == 1  # the customer's suspension hold only
        tasks.sweep_queue()
    assert sorted(delay.call_args_list[0].args[0]) == [suspended_mail.pk]
    assert QueuedMessage.objects.get(pk=first.pk).state == State.HELD
    # Support releases one (it is delivered) and cancels the other.
    with handed_over() as delay, django_capture_on_commit_callbacks(execute=True):
        services.message_retry_now(actor=cast.support, message=first)
    delay.assert_called_once_with([first.pk])
    services.message_cancel(actor=cast.support, message=second, bounce=False, reason="sent by the intruder")
    assert QueuedMessage.objects.get(pk=first.pk).state == State.QUEUED
    assert QueuedMessage.objects.get(pk=second.pk).state == State.CANCELLED
    assert set(Recipient.objects.filter(message=second).values_list("state", flat=True)) == {Recipient.State.CANCELLED}


@pytest.mark.parametrize("scope", ["mailbox", "domain", "customer", "reseller"])
def test_suspending_with_hold_holds_what_it_queued(cast, scope, django_capture_on_commit_callbacks):
    obj = {"mailbox": cast.a.mailbox, "domain": cast.a.domain, "customer": cast.a.customer,
           "reseller": cast.reseller_a}[scope]
    mine, other = queue(cast.a, "bob@b.test"), queue(cast.b, "bob@b.test")
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, \
            django_capture_on_commit_callbacks(execute=True):
        suspend(actor=None, obj=obj, reason="phished", hold=True)
    assert tasks.hold_queued(**send_task.call_args.kwargs["kwargs"]) == 1
    assert QueuedMessage.objects.get(pk=mine.pk).state == State.HELD
    assert QueuedMessage.objects.get(pk=other.pk).state == State.QUEUED
    with mock.patch("accounts.services.workers.current_app.send_task"):
        restore(actor=None, obj=obj, reason="cleaned up")
    assert tasks.release_held(cast.a.customer.pk) == 0  # support decides


def test_suspending_without_hold_sends_no_hold(cast, django_capture_on_commit_callbacks):
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, \
            django_capture_on_commit_callbacks(execute=True):
        suspend(actor=None, obj=cast.a.mailbox, reason="spam")
    send_task.assert_not_called()


def test_a_hold_whose_notice_is_lost_is_carried_out_by_the_sweep_and_a_restore_never_fails(
        cast, django_capture_on_commit_callbacks, caplog):
    """The broker is down: revoking with a hold and restoring a customer still succeed; the sweep catches up."""
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    waiting = queue(cast.a, "bob@b.test", credential=credential)
    broker_down = ConnectionError("broker unreachable")
    with mock.patch("accounts.services.workers.current_app.send_task", side_effect=broker_down), \
            django_capture_on_commit_callbacks(execute=True):
        credential_revoke(actor=None, credential=credential, hold=True)
        suspend(actor=None, obj=cast.b.customer, reason="unpaid")
        restore(actor=None, obj=cast.b.customer, reason="paid")
    assert "could not reach the workers for relay.tasks.hold_queued" in caplog.text
    assert QueuedMessage.objects.get(pk=waiting.pk).state == State.QUEUED, "nothing held yet: the notice was lost"
    with handed_over() as send:
        tasks.sweep_queue()
    assert QueuedMessage.objects.get(pk=waiting.pk).state == State.HELD
    assert waiting.pk not in [pk for call in send.call_args_list for pk in call.args[0]]
    assert tasks.sweep_queue() == 0 and AuditEntry.objects.filter(action="messages.hold").count() == 1, "once"
