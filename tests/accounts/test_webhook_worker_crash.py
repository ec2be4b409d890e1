"""A Celery worker killed with SIGKILL while it waits for a webhook receiver's answer loses no event: once its
claim expires, another worker sends the same event again (same event id, for the receiver to dedupe), and the
delivery ends delivered, once."""

import time

import pytest
from celery import Celery

from accounts.models import WebhookDelivery
from accounts.services.suspension import suspend
from accounts.services.webhooks import webhook_endpoint_create
from tests.support.webhook_receiver import Receiver
from tests.support.workers import broker_env, celery_processes, wait_until  # noqa: F401


def _sweep(env: dict) -> None:
    """What beat does every minute, now: the sweep task, on the workers' broker and queue."""
    folder = env["HM_BROKER_DIR"]
    app = Celery(broker="filesystem://", broker_transport_options={
        "data_folder_in": folder, "data_folder_out": folder, "control_folder": folder, "store_processed": False})
    app.send_task("accounts.tasks.sweep_webhooks", queue=env["HM_TASK_QUEUE"])


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_request_loses_no_event(cast, celery_processes, tmp_path):
    receiver = Receiver(stall_first=120).start()
    try:
        webhook_endpoint_create(actor=None, customer=cast.a.customer, url=receiver.url)
        suspend(actor=None, obj=cast.a.customer, reason="unpaid")
        delivery = WebhookDelivery.objects.get()
        # A claim that outlasts the request (connecting, sending, reading: 3 × 2 s), not the default's minute.
        env = broker_env("filesystem://", tmp_path, WEBHOOK_TIMEOUT=2, WEBHOOK_LEASE_SECONDS=8)
        first = celery_processes("worker", env, "-P", "solo")
        _sweep(env)
        wait_until(lambda: len(receiver.requests) == 1, timeout=60, what="the first worker's request",
                   processes=[first])
        first.kill()
        delivery.refresh_from_db()
        assert delivery.state == "pending" and delivery.lease_until is not None and delivery.attempts == 0

        second = celery_processes("worker", env, "-P", "solo")
        swept = [0.0]

        def delivered():
            if time.monotonic() - swept[0] > 2:  # as beat would, without waiting a minute
                _sweep(env)
                swept[0] = time.monotonic()
            delivery.refresh_from_db()
            return delivery.state == "delivered"

        wait_until(delivered, timeout=120, what="the event sent again after the claim expired",
                   processes=[second])
        assert receiver.event_ids() == [str(delivery.event.uuid)] * 2  # the killed attempt's, and the answered one
        assert delivery.attempts == 1 and WebhookDelivery.objects.count() == 1
    finally:
        receiver.stop()
