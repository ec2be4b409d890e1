"""A Celery worker killed with SIGKILL in the middle of a delivery: after its lease runs out, another worker
delivers the message, and the recipient the first one had already delivered is not sent again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from relay.models import QueuedMessage
from tests.support.delivery import mx, queue, routes  # noqa: F401
from tests.support.workers import broker_env, celery_processes, wait_until  # noqa: F401


@pytest.mark.django_db(transaction=True)
def test_killed_worker_message_delivered_after_the_lease_once_per_recipient(cast, routes, mx, celery_processes,
                                                                            tmp_path):
    # Two recipient domains: the first is delivered at once, the MX stalls at the second's RCPT.
    mx.slow["slow@b.test"] = 120
    message = queue(cast.a, "done@amx.test", "slow@b.test", next_attempt_at=timezone.now() - timedelta(minutes=5))
    env = broker_env("filesystem://", tmp_path, DELIVERY_LEASE_SECONDS=4, DELIVERY_SWEEP_SECONDS=0.5)
    # No task was ever sent for this message: only the periodic sweep finds it, as after a lost broker message.
    beat = celery_processes("beat", env)
    first = celery_processes("worker", env, "-P", "solo")
    wait_until(lambda: "slow@b.test" in mx.handler.rcpt_seen, timeout=60, what="first worker at the slow RCPT",
               processes=[beat, first])
    message.refresh_from_db()
    assert message.lease_owner and message.state == QueuedMessage.State.QUEUED
    assert dict(message.recipients.values_list("address", "state")) == {"done@amx.test": "delivered",
                                                                          "slow@b.test": "queued"}
    first.kill()
    assert len(mx.delivered_to("done@amx.test")) == 1 and mx.delivered_to("slow@b.test") == []

    mx.slow.clear()
    second = celery_processes("worker", env, "-P", "solo")

    def delivered():
        message.refresh_from_db()
        return message.state == QueuedMessage.State.DELIVERED

    wait_until(delivered, timeout=60, what="delivery after the lease expired", processes=[beat, second])
    assert [m.rcpt_tos for m in mx.messages] == [["done@amx.test"], ["slow@b.test"]]
    assert message.attempts == 1 and message.lease_owner == ""
    assert list(message.delivery_attempts.values_list("recipient__address", "outcome")) == [
        ("done@amx.test", "delivered"), ("slow@b.test", "delivered")]
