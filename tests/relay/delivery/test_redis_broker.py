"""Accept → task → delivered through a real Redis broker: a relay process and a separate Celery worker process.

Redis: TEST_REDIS_URL (CI sets redis://127.0.0.1:6379/15), that URL by default. No beat runs, so the message
can only reach the worker through the task the relay sent on commit.
"""

import pytest

from relay.models import QueuedMessage
from tests.support.delivery import mx, routes  # noqa: F401
from tests.support.smtp import message as make_message
from tests.support.smtp import send, submission_client
from tests.support.workers import broker_env, celery_processes, redis_url, require_redis, wait_until  # noqa: F401


@pytest.mark.django_db(transaction=True)
def test_accepted_message_delivered_through_redis(cast, login, routes, mx, relay_process, celery_processes,
                                                 tmp_path):
    url = redis_url()
    require_redis(url)
    env = broker_env(url, tmp_path)
    worker = celery_processes("worker", env, "-P", "solo")
    relay = relay_process(env=env)
    sender = cast.a.mailbox.address
    with submission_client(relay.submission, auth=login) as client:
        replies = send(client, sender=sender, recipients=["bob@b.test", "carol@b.test"],
                       data=make_message(sender=sender, to="bob@b.test", subject="Through Redis"))
    assert replies[-1][0] == 250, replies
    message = QueuedMessage.objects.get(subject="Through Redis")

    def delivered():
        message.refresh_from_db()
        return message.state == QueuedMessage.State.DELIVERED

    wait_until(delivered, timeout=60, what="delivery through Redis", processes=[worker])
    [got] = mx.messages
    assert sorted(got.rcpt_tos) == ["bob@b.test", "carol@b.test"] and got.mail_from == sender
    assert got.message["Subject"] == "Through Redis" and message.queue_id.encode() in got.content
    assert "relay.tasks.deliver_messages" in worker.log()
