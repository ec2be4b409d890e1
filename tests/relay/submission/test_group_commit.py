"""Group commit: messages that arrive together are accepted in one transaction, each decided on its own."""

import asyncio
import smtplib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts import quotas
from accounts.models import Mailbox, SmtpCredential
from accounts.quotas import QuotaExceeded
from accounts.services.credentials import credential_create
from accounts.services.mailboxes import mailbox_create
from relay import loop_reads
from relay.models import QueuedMessage, Recipient
from relay.smtpd import server as relay_server
from relay.smtpd import threads as relay_db
from relay.submission.accept import Submission, accept_messages
from tests.support import logins
from tests.support.factories import PASSWORD
from tests.support.loops import run, until_async
from tests.support.smtp import message, send, submission_client
from tests.support.workers import wait_until


def submission(principal, recipients, *, sender=None):
    sender = sender or "info@alpha.test"
    return Submission(principal=principal, mail_from=sender, recipients=recipients,
                      content=message(sender=sender), client_ip="192.0.2.7", helo="client.test", tls_version="TLSv1.3")


@pytest.fixture
def principal(cast):
    return logins.authenticate("info@alpha.test", PASSWORD, "192.0.2.7")


def test_each_message_of_a_batch_is_decided_against_what_the_batch_already_took(cast, principal):
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(send_per_hour=3)
    results = accept_messages([submission(principal, ["a@example.org", "b@example.org"]),
                               submission(principal, ["c@example.org", "d@example.org"]),
                               submission(principal, ["e@example.org"])])
    first, second, third = results
    assert isinstance(first, QueuedMessage) and isinstance(third, QueuedMessage)
    assert isinstance(second, QuotaExceeded) and second.used == 2 and second.limit == 3
    assert second.retry_at is not None  # the recipients taken in this batch free an hour later, like any other
    stored = QueuedMessage.objects.order_by("id")
    assert [m.queue_id for m in stored] == [first.queue_id, third.queue_id]
    assert sorted(Recipient.objects.values_list("address", flat=True)) == ["a@example.org", "b@example.org",
                                                                           "e@example.org"]
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk)["hour"] == 3
    assert quotas.usage(scope="customer", scope_id=cast.a.customer.pk)["hour"] == 3
    assert all(bytes(m.content).startswith(b"Received: from client.test") for m in stored)


def test_a_sender_deleted_since_its_login_fails_alone(cast, principal):
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    gone = logins.authenticate(new.credential.username, new.secret, "192.0.2.7")
    SmtpCredential.objects.filter(pk=new.credential.pk).delete()
    ok, missing = accept_messages([submission(principal, ["a@example.org"]), submission(gone, ["b@example.org"])])
    assert isinstance(ok, QueuedMessage) and isinstance(missing, SmtpCredential.DoesNotExist)
    assert list(QueuedMessage.objects.values_list("queue_id", flat=True)) == [ok.queue_id]
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk)["hour"] == 1


def test_senders_of_one_batch_share_the_levels_above_them(cast, principal):
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(send_per_hour=None)
    cast.a.domain.__class__.objects.filter(pk=cast.a.domain.pk).update(send_per_hour=2)
    other = mailbox_create(actor=None, domain=cast.a.domain, local_part="sales", password=PASSWORD,
                           smtp_enabled=True)
    second = logins.authenticate(other.address, PASSWORD, "192.0.2.7")
    results = accept_messages([submission(principal, ["a@example.org"]),
                               submission(second, ["b@example.org"], sender=other.address),
                               submission(second, ["c@example.org"], sender=other.address)])
    assert [type(r).__name__ for r in results] == ["QueuedMessage", "QueuedMessage", "QuotaExceeded"]
    assert results[2].level.label == "domain alpha.test"
    assert quotas.usage(scope="domain", scope_id=cast.a.domain.pk)["hour"] == 2


# --- the lane's batching, on the event loop --------------------------------------------------------------------


def test_items_arriving_while_the_lane_is_busy_go_to_one_call_and_errors_stay_with_their_item():
    calls, release = [], threading.Event()

    def work(items):
        calls.append(list(items))
        if len(calls) == 1:
            release.wait(5)
        return [ValueError(item) if item == "bad" else item.upper() for item in items]

    async def scenario():
        runner = relay_db.DbRunner.__new__(relay_db.DbRunner)
        runner.lanes = [ThreadPoolExecutor(max_workers=1)]
        runner._batches = {}
        first = asyncio.ensure_future(runner.batch(work, "one"))
        await until_async(lambda: calls, '"one" running on the lane')
        later = [asyncio.ensure_future(runner.batch(work, item)) for item in ("two", "bad", "three")]
        await until_async(lambda: len(runner._batches[(0, work)].waiting) == 3, "three items waiting")
        release.set()
        results = await asyncio.gather(first, *later, return_exceptions=True)
        runner.lanes[0].shutdown()
        return results

    one, two, bad, three = run(scenario, fair=False)
    assert calls == [["one"], ["two", "bad", "three"]]
    assert (one, two, three) == ("ONE", "TWO", "THREE")
    assert isinstance(bad, ValueError)


def test_a_failing_batch_fails_every_item_of_it_and_the_lane_goes_on():
    def work(items):
        if "boom" in items:
            raise RuntimeError("database went away")
        return items

    async def scenario():
        runner = relay_db.DbRunner.__new__(relay_db.DbRunner)
        runner.lanes = [ThreadPoolExecutor(max_workers=1)]
        runner._batches = {}
        failed = await asyncio.gather(runner.batch(work, "boom"), return_exceptions=True)
        after = await runner.batch(work, "fine")
        runner.lanes[0].shutdown()
        return failed, after

    failed, after = run(scenario, fair=False)
    assert isinstance(failed[0], RuntimeError) and after == "fine"


def test_concurrent_sessions_are_committed_together(relay, cast, monkeypatch):
    """Twelve sessions end DATA at once while the lane is held: they reach the database in few transactions (on
    PostgreSQL written from the event loop, elsewhere on a write lane's thread)."""
    sizes, gate = [], threading.Event()
    if loop_reads.on_loop():
        real_on_loop = relay_server.accept_messages_on_loop

        async def counting_on_loop(submissions, writer):
            sizes.append(len(submissions))
            await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)
            return await real_on_loop(submissions, writer)

        monkeypatch.setattr(relay_server, "accept_messages_on_loop", counting_on_loop)

        def waiting():
            return sum(len(writer.waiting) for writer in relay.relay.handler.writers)
    else:
        real = relay_server.accept_messages

        def counting(submissions):
            sizes.append(len(submissions))
            gate.wait(10)
            return real(submissions)

        monkeypatch.setattr(relay_server, "accept_messages", counting)

        def waiting():
            return sum(len(b.waiting) for (_, func), b in list(relay.relay.db._batches.items()) if func is counting)
    clients = [submission_client(relay.submission, auth=("info@alpha.test", PASSWORD)) for _ in range(12)]
    replies = []

    def one(client):
        replies.append(send(client, sender="info@alpha.test", recipients=["bob@example.org"],
                            data=message(sender="info@alpha.test"))[-1])

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    wait_until(lambda: sizes, timeout=10, what="a first batch")
    wait_until(lambda: waiting() == 12 - sizes[0], timeout=10, what="the other sessions waiting behind the first batch")
    gate.set()
    for t in threads:
        t.join(20)
    for c in clients:
        try:
            c.quit()
        except smtplib.SMTPException:
            pass
    assert [code for code, _ in replies] == [250] * 12
    assert sum(sizes) == 12 and len(sizes) <= 2 and max(sizes) > 1, sizes  # the first batch, then all the rest
    assert QueuedMessage.objects.count() == 12
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk)["hour"] == 12


def test_the_relay_commits_what_it_accepts_to_disk_before_answering(relay):
    """SQLite: the write lanes' connections use synchronous=FULL; PostgreSQL: synchronous_commit is on."""
    from django.db import connection

    def setting():
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA synchronous")
                return cursor.fetchone()[0]
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    lane_value = relay.relay.db.lanes[0].submit(setting).result(10)
    assert lane_value == (2 if connection.vendor == "sqlite" else "on")  # 2 = FULL
    if connection.vendor == "sqlite":
        assert setting() == 1  # NORMAL: the panel and the workers keep the project's default
