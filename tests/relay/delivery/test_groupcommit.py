"""Group commit in a worker process: the claims and outcomes of threads that arrive while another thread is at
the database go together in one transaction, each result back to its own caller."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from relay.delivery import attempts
from relay.delivery.groupcommit import GroupCommit
from relay.delivery.smtpclient import ConnectionCache
from relay.models import DeliveryAttempt, QueuedMessage, Recipient
from tests.support.delivery import mx, queue, routes  # noqa: F401
from tests.support.workers import wait_until

State = QueuedMessage.State


def test_callers_arriving_while_a_batch_runs_go_together_in_the_next_one():
    batches, first_started, release = [], threading.Event(), threading.Event()

    def work(items):
        batches.append(list(items))
        if items == [0]:
            first_started.set()
            release.wait(10)
        return [item * 10 for item in items]

    group = GroupCommit(work)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(group, 0)
        first_started.wait(10)
        others = [pool.submit(group, n) for n in (1, 2, 3)]
        wait_until(lambda: len(group.waiting) == 3, timeout=10, what="three callers waiting")
        release.set()
        assert [f.result(10) for f in (first, *others)] == [0, 10, 20, 30]
    assert batches == [[0], [1, 2, 3]]


def test_an_error_result_is_raised_to_its_own_caller_only():
    group = GroupCommit(lambda items: [ValueError(item) if item == "bad" else item for item in items])
    assert group("good") == "good"
    with pytest.raises(ValueError, match="bad"):
        group("bad")
    failing = GroupCommit(lambda items: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing("x")
    assert not failing.busy, "the next caller is not left waiting"


@pytest.mark.django_db
def test_one_claim_round_for_several_messages_and_a_duplicate_task_gets_nothing(cast):
    first, second = queue(cast.a, "bob@b.test", "carol@c.test"), queue(cast.b, "dave@b.test")
    Request = attempts._ClaimRequest
    with CaptureQueriesContext(connection) as queries:
        claimed = attempts._claim_batch([Request(first.pk, None, None), Request(second.pk, None, None),
                                         Request(first.pk, None, None)])
    assert [m and m.pk for m in claimed] == [first.pk, second.pk, None]
    assert claimed[0].lease_owner == claimed[1].lease_owner != ""
    assert [r.address for r in claimed[0].claimed_recipients] == ["bob@b.test", "carol@c.test"]
    assert claimed[0].domain.name == cast.a.domain.name and claimed[1].customer_status == "active"
    # The lease UPDATE, the messages with their senders' status and domains (on PostgreSQL returned by the UPDATE),
    # their recipients.
    assert len(queries) == (2 if connection.vendor == "postgresql" else 3)
    assert attempts._claim_batch([Request(second.pk, None, None)]) == [None], "leased already"


@pytest.mark.django_db
def test_outcomes_of_several_deliveries_in_one_transaction(cast, django_capture_on_commit_callbacks):
    delivered = queue(cast.a, "ok@b.test", subject="one")
    deferred, bounced = queue(cast.a, "later@b.test", subject="two"), queue(cast.a, "nobody@b.test", subject="three")
    messages = attempts._claim_batch([attempts._ClaimRequest(m.pk, None, None) for m in (delivered, deferred, bounced)])
    replies = {"ok@b.test": (250, "2.0.0 Ok: queued"), "later@b.test": (451, "4.7.1 Greylisted"),
               "nobody@b.test": (550, "5.1.1 No such user")}
    results = []
    for message in messages:
        [recipient] = message.claimed_recipients
        code, text = replies[recipient.address]
        outcome = attempts.Outcome(recipient, attempts._state_for(code), code, attempts.status_of(code, text), text,
                                   "mx1.b.test", "127.0.0.1")
        results.append(attempts._Result(message, [outcome], attempts.timezone.now()))
    with django_capture_on_commit_callbacks():
        states = attempts._record_batch(results)
    assert states == [State.DELIVERED, State.DEFERRED, State.BOUNCED]
    for message, state in zip((delivered, deferred, bounced), states):
        message.refresh_from_db()
        assert (message.state, message.attempts, message.lease_owner) == (state, 1, "")
    assert deferred.next_attempt_at > deferred.created_at and delivered.finished_at
    assert dict(Recipient.objects.filter(message__in=messages).values_list("address", "state")) == {
        "ok@b.test": "delivered", "later@b.test": "deferred", "nobody@b.test": "bounced"}
    assert DeliveryAttempt.objects.filter(message__in=messages).count() == 3
    assert [b.bounce_of_id for b in QueuedMessage.objects.filter(is_bounce=True)] == [bounced.pk]


@pytest.mark.django_db
def test_a_message_whose_lease_was_taken_over_is_not_finished_by_the_batch(cast):
    message = queue(cast.a, "ok@b.test")
    [claimed] = attempts._claim_batch([attempts._ClaimRequest(message.pk, None, None)])
    QueuedMessage.objects.filter(pk=message.pk).update(lease_owner="other-worker")
    [recipient] = claimed.claimed_recipients
    outcome = attempts.Outcome(recipient, Recipient.State.DELIVERED, 250, "2.0.0", "2.0.0 Ok", "mx1.b.test")
    attempts._record_batch([attempts._Result(claimed, [outcome], attempts.timezone.now())])
    message.refresh_from_db()
    assert (message.state, message.lease_owner, message.attempts) == (State.QUEUED, "other-worker", 0)
    assert message.recipients.get().state == "delivered", "what the remote server said is kept"


@pytest.mark.django_db(transaction=True)
def test_threads_of_one_worker_deliver_every_message_once(cast, routes, mx):
    messages = [queue(cast.a, f"r{n}@b.test", subject=f"m{n}") for n in range(24)]
    cache = ConnectionCache(idle_seconds=0)

    def deliver(message):
        try:
            return attempts.deliver(message.pk, cache=cache)
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        # Each message twice, as when the sweep hands out a message whose task is on its way.
        states = list(pool.map(deliver, messages + messages))
    assert sorted(states[:24] + states[24:], key=str) == [None] * 24 + [State.DELIVERED] * 24
    assert sorted(m.rcpt_tos[0] for m in mx.messages) == sorted(f"r{n}@b.test" for n in range(24))
    assert set(QueuedMessage.objects.values_list("state", "attempts", "lease_owner")) == {(State.DELIVERED, 1, "")}
    assert DeliveryAttempt.objects.count() == 24


def test_with_two_rounds_a_caller_starts_while_the_other_round_runs_and_the_third_waits():
    batches, started, release = [], threading.Semaphore(0), threading.Event()

    def work(items):
        batches.append(list(items))
        started.release()
        release.wait(10)
        return [item * 10 for item in items]

    group = GroupCommit(work, rounds=lambda: 2)
    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(group, 0)
        assert started.acquire(timeout=10)
        second = pool.submit(group, 1)
        assert started.acquire(timeout=10), "the second round started while the first was under way"
        others = [pool.submit(group, n) for n in (2, 3)]
        wait_until(lambda: len(group.waiting) == 2, timeout=10, what="two callers waiting for a free round")
        assert group.busy == 2 and group.rounds == 2
        release.set()
        assert [f.result(10) for f in (first, second, *others)] == [0, 10, 20, 30]
    assert batches[:2] == [[0], [1]] and sorted(x for b in batches[2:] for x in b) == [2, 3]
    assert not group.busy
