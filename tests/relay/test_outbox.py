"""The panel's own mail (a password reset link) goes out through the outbound queue: queued from the system
sender, handed to the workers, delivered by them to the recipient's MX like any other message."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from relay.delivery import attempts, tasks
from relay.delivery.smtpclient import ConnectionCache
from relay.models import QueuedMessage
from tests.support.delivery import handed_over, mx, routes  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def reuse(monkeypatch):
    cache = ConnectionCache(idle_seconds=30)
    monkeypatch.setattr(attempts, "_cache", cache)
    yield cache
    cache.close_all()


def test_a_reset_link_is_queued_and_delivered_by_the_workers(cast, routes, mx, reuse, settings,
                                                             django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "relay.outbox.QueueEmailBackend"
    settings.DEFAULT_FROM_EMAIL = "Hosting Panel <no-reply@relay.test>"
    User.objects.filter(pk=cast.b.user.pk).update(email="owner@b.test")
    with handed_over() as send, django_capture_on_commit_callbacks(execute=True):
        Client().post(reverse("password_reset"), {"email": "owner@b.test"})
    message = QueuedMessage.objects.get()
    assert send.call_args.args[0] == [message.pk]  # handed to the workers by task name, after the commit
    assert (message.mail_from, message.header_from) == ("no-reply@relay.test", "no-reply@relay.test")

    assert tasks.deliver_messages([message.pk]) == {message.pk: QueuedMessage.State.DELIVERED}
    [received] = mx.messages
    assert received.mail_from == "no-reply@relay.test" and received.rcpt_tos == ["owner@b.test"]
    body = received.message.get_body(("plain",)).get_content()
    assert re.search(r"/password-reset/[^/\s]+/[^/\s]+/", body)
    assert received.message["From"] == "Hosting Panel <no-reply@relay.test>"


def test_a_message_without_recipients_queues_nothing(settings):
    settings.EMAIL_BACKEND = "relay.outbox.QueueEmailBackend"
    assert mail.EmailMessage("Subject", "Body", to=[]).send() == 0
    assert not QueuedMessage.objects.exists()
