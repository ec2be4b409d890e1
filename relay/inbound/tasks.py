"""The MX's periodic task, run by the Celery beat (hostingmail/celery.py)."""

from celery import shared_task

from relay.inbound import greylist


@shared_task(name="relay.inbound_tasks.purge_greylist", ignore_result=True)
def purge_greylist() -> int:
    """Greylisting triplets past their expiry, whether they passed or were never retried."""
    return greylist.purge_expired()
