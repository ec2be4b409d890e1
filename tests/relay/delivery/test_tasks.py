"""Tasks naming several messages: how the relay and the sweep hand messages over, and how a worker delivers them."""

import threading
from unittest import mock

import pytest

from relay import handoff
from relay.delivery import attempts, tasks
from relay.delivery.smtpclient import ConnectionCache
from relay.models import QueuedMessage
from relay.submission import accept
from tests.support import logins
from tests.support.delivery import handed_over, mx, queue, routes  # noqa: F401
from tests.support.factories import PASSWORD
from tests.support.smtp import message

pytestmark = pytest.mark.django_db
State = QueuedMessage.State


@pytest.fixture
def reuse(monkeypatch):
    """The worker's own connection cache, as in a worker process, closed afterwards."""
    cache = ConnectionCache(idle_seconds=30)
    monkeypatch.setattr(attempts, "_cache", cache)
    yield cache
    cache.close_all()


def test_enqueue_names_a_few_messages_a_task(settings):
    settings.DELIVERY_TASK_MESSAGES = 3
    with handed_over() as delay:
        handoff.enqueue([1, 2, 3, 4, 5, 6, 7])
    assert [c.args[0] for c in delay.call_args_list] == [[1, 2, 3], [4, 5, 6], [7]]


def test_a_broker_that_cannot_be_reached_loses_no_message(cast, caplog):
    message = queue(cast.a, "bob@b.test")
    with handed_over(side_effect=ConnectionError("broker down")):
        handoff.enqueue([message.pk])  # no exception: the caller has committed already
    assert "could not hand messages" in caplog.text and "broker down" in caplog.text
    with handed_over() as delay:
        assert tasks.sweep_queue() == 0, "a fresh message is given a minute before the sweep takes it"
        assert attempts.due_message_ids(fresh_grace=0) == [message.pk]


def test_a_task_delivers_each_of_its_messages_over_one_session(cast, routes, mx, reuse):
    messages = [queue(cast.a, f"r{n}@b.test", subject=f"m{n}") for n in range(3)]
    states = tasks.deliver_messages([m.pk for m in messages])
    assert states == {m.pk: State.DELIVERED for m in messages}
    assert sorted(m.message["Subject"] for m in mx.messages) == ["m0", "m1", "m2"]
    assert len(mx.handler.sessions) == 1, "the messages of a task follow each other on one connection"


def test_the_single_message_task_still_delivers(cast, routes, mx, reuse):
    message = queue(cast.a, "bob@b.test")
    assert tasks.deliver_message(message.pk) == State.DELIVERED
    message.refresh_from_db()
    assert message.state == State.DELIVERED


def test_a_task_that_ran_long_hands_its_other_messages_to_a_new_task(cast, routes, mx, reuse, settings):
    settings.DELIVERY_TASK_SECONDS = 0  # every message after the first is "late"
    first, *rest = [queue(cast.a, f"r{n}@b.test") for n in range(3)]
    with handed_over() as delay:
        states = tasks.deliver_messages([first.pk, *(m.pk for m in rest)])
    assert states == {first.pk: State.DELIVERED}
    delay.assert_called_once_with([m.pk for m in rest])
    for message in rest:
        message.refresh_from_db()
        assert (message.state, message.lease_owner, message.attempts) == (State.QUEUED, "", 0), "never claimed"
    assert len(mx.messages) == 1


def test_one_message_that_fails_does_not_stop_the_others(cast, routes, mx, reuse, caplog):
    messages = [queue(cast.a, f"r{n}@b.test", subject=f"m{n}") for n in range(3)]
    real = attempts.deliver

    def deliver(message_id, **kwargs):
        if message_id == messages[1].pk:
            raise RuntimeError("disk on fire")
        return real(message_id, **kwargs)

    with mock.patch.object(attempts, "deliver", deliver), pytest.raises(RuntimeError, match="disk on fire"):
        tasks.deliver_messages([m.pk for m in messages])
    assert sorted(m.message["Subject"] for m in mx.messages) == ["m0", "m2"]
    assert f"delivery of message {messages[1].pk} failed" in caplog.text
    messages[1].refresh_from_db()
    assert messages[1].state == State.QUEUED


def test_the_relay_publishes_what_was_committed_meanwhile_together(settings):
    """While the notifier's thread publishes, messages committed meanwhile wait and go out in one task."""
    settings.DELIVERY_TASK_MESSAGES = 10
    publishing, release, published = threading.Event(), threading.Event(), []

    def enqueue(ids):
        published.append(list(ids))
        publishing.set()
        release.wait(10)

    notifier = accept.Notifier()
    with mock.patch.object(accept, "enqueue", enqueue):
        notifier.submit([1])
        assert publishing.wait(10)
        notifier.submit([2, 3])
        notifier.submit([4])
        release.set()
        assert notifier.drain(10)
    assert published == [[1], [2, 3, 4]]


def test_the_relay_holds_a_notice_for_others_to_join_it_up_to_a_tasks_worth(settings):
    settings.DELIVERY_TASK_MESSAGES, settings.RELAY_HANDOFF_LINGER = 3, 60
    published, full = [], threading.Event()

    def enqueue(ids):
        published.append(list(ids))
        full.set()

    notifier = accept.Notifier()
    with mock.patch.object(accept, "enqueue", enqueue):
        notifier.submit([1])
        notifier.submit([2])
        notifier.submit([3, 4])  # a task's worth: out at once, not after the linger
        assert full.wait(10)
        assert notifier.drain(10)
    assert published == [[1, 2, 3, 4]]


def test_a_stopping_relay_does_not_wait_out_the_linger(settings):
    settings.DELIVERY_TASK_MESSAGES, settings.RELAY_HANDOFF_LINGER = 10, 60
    published = []
    notifier = accept.Notifier()
    with mock.patch.object(accept, "enqueue", lambda ids: published.append(list(ids))):
        notifier.submit([1])
        assert notifier.drain(10)
        assert published == [[1]]
        notifier.submit([2])  # and after the drain, notices linger again until a task's worth or the drain
        notifier.submit(list(range(3, 12)))
        assert notifier.drain(10)
    assert published == [[1], [2, *range(3, 12)]]


def test_messages_accepted_together_are_one_notice(cast, django_capture_on_commit_callbacks):
    principal = logins.authenticate("info@alpha.test", PASSWORD, "192.0.2.7")
    submissions = [accept.Submission(principal=principal, mail_from="info@alpha.test", recipients=[f"r{n}@b.test"],
                                          content=message(sender="info@alpha.test"), client_ip="192.0.2.7",
                                          helo="client.test", tls_version="TLSv1.3") for n in range(3)]
    with mock.patch.object(accept.notifier, "submit") as submit, \
            django_capture_on_commit_callbacks(execute=True):
        accepted = accept.accept_messages(submissions)
    submit.assert_called_once_with([m.pk for m in accepted])


def test_the_cache_keeps_a_session_for_each_thread_that_delivered_at_once(cast, routes, mx, settings):
    cache = ConnectionCache(idle_seconds=30, per_host=2)
    hop = dict(host="mx1.b.test", address="127.0.0.1", port=settings.DELIVERY_PORT, smarthost=None)
    clients = [cache.get(**hop) for _ in range(3)]  # three threads at once: three sessions
    for client in clients:
        cache.put(client)
    assert clients[2].smtp is None, "beyond per_host idle sessions, the one given back is closed"
    assert cache.get(**hop) is clients[1] and cache.get(**hop) is clients[0], "the most recently used first"
    cache.put(clients[0])
    clients[0].last_used -= 31
    fresh = cache.get(**hop)
    assert fresh is not clients[0] and clients[0].smtp is None, "an idle session past idle_seconds is closed"
    fresh.close()
    clients[1].close()
    cache.close_all()
