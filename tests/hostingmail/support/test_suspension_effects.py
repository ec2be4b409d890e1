"""What a suspension does outside the panel: the relay refuses the suspended (only them), and their queued mail
is held, not lost, until they are restored."""

from unittest import mock

import pytest
from celery import current_app

from accounts.services.credentials import credential_create
from accounts.services.suspension import restore, suspend
from relay.delivery import attempts
from relay.models import QueuedMessage
from tests.support.delivery import mx, routes  # noqa: F401
from tests.support.factories import PASSWORD
from tests.support.logins import authenticate
from tests.support.smtp import auth_plain, message, send, submission_client

pytestmark = pytest.mark.django_db


def test_relay_refuses_every_login_of_a_suspended_customer_and_accepts_them_again_when_restored(cast):
    new = credential_create(actor=None, domain=cast.a.domain)
    logins = [(cast.a.mailbox.address, PASSWORD), (new.credential.username, new.secret)]
    assert all(authenticate(user, secret, "192.0.2.10") is not None for user, secret in logins)
    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid")
    assert all(authenticate(user, secret, "192.0.2.10") is None for user, secret in logins)
    assert authenticate(cast.b.mailbox.address, PASSWORD, "192.0.2.10") is not None  # others unaffected
    restore(actor=cast.support, obj=cast.a.customer, reason="paid")
    assert all(authenticate(user, secret, "192.0.2.10") is not None for user, secret in logins)
    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid")
    assert all(authenticate(user, secret, "192.0.2.10") is None for user, secret in logins)
    assert authenticate(cast.b.mailbox.address, PASSWORD, "192.0.2.10") is not None  # others unaffected
    restore(actor=cast.support, obj=cast.a.customer, reason="paid")


@pytest.mark.parametrize("target", ["domain", "mailbox", "credential"])
def test_relay_refuses_a_suspended_domain_mailbox_or_credential(cast, target):
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    obj = {"domain": cast.a.domain, "mailbox": cast.a.mailbox, "credential": new.credential}[target]
    suspend(actor=cast.support, obj=obj, reason="investigating")
    assert authenticate(new.credential.username, new.secret, "192.0.2.10") is None
    if target != "credential":
        assert authenticate(cast.a.mailbox.address, PASSWORD, "192.0.2.10") is None
    restore(actor=cast.support, obj=obj, reason="resolved")
    assert authenticate(new.credential.username, new.secret, "192.0.2.10") is not None


@pytest.mark.django_db(transaction=True)
def test_a_real_relay_session_is_refused_after_suspension(relay, cast):
    login = (cast.a.mailbox.address, PASSWORD)
    with submission_client(relay.submission, auth=login) as client:
        replies = send(client, sender=login[0], recipients=["bob@example.org"], data=message(sender=login[0]))
        assert replies[-1][0] == 250
    suspend(actor=cast.support, obj=cast.a.customer, reason="abuse report")
    with submission_client(relay.submission) as client:
        assert auth_plain(client, *login) == (535, b"5.7.8 Authentication credentials invalid")
    restore(actor=cast.support, obj=cast.a.customer, reason="resolved")
    with submission_client(relay.submission) as client:
        assert auth_plain(client, *login)[0] == 235


@pytest.mark.django_db(transaction=True)
def test_mail_queued_before_a_suspension_is_held_and_goes_on_when_restored(relay, cast, routes, mx,
                                                                           django_capture_on_commit_callbacks):
    login = (cast.a.mailbox.address, PASSWORD)
    with submission_client(relay.submission, auth=login) as client:
        replies = send(client, sender=login[0], recipients=["bob@b.test"], data=message(sender=login[0]))
    queue_id = replies[-1][1].decode().rsplit(" ", 1)[1]
    queued = QueuedMessage.objects.get(queue_id=queue_id)

    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid invoice")
    assert attempts.deliver(queued.pk) == QueuedMessage.State.HELD
    queued.refresh_from_db()
    assert queued.state == QueuedMessage.State.HELD and mx.messages == []

    with mock.patch("accounts.services.workers.current_app.send_task") as send_task:
        with django_capture_on_commit_callbacks(execute=True):
            restore(actor=cast.support, obj=cast.a.customer, reason="paid")
    (name,), kwargs = send_task.call_args
    # What a worker runs for that message: the task registered under that name once the worker has imported the
    # task modules (autodiscovery, as at a worker's start), with those arguments.
    current_app.loader.import_default_modules()
    assert current_app.tasks[name](*kwargs["args"]) == 1
    queued.refresh_from_db()
    assert queued.state == QueuedMessage.State.QUEUED
    assert attempts.deliver(queued.pk) == QueuedMessage.State.DELIVERED
    assert [m.rcpt_tos for m in mx.messages] == [["bob@b.test"]]
