"""Periodic upkeep of the AUTH failure counts (scheduled in hostingmail/celery.py; run by the workers)."""

from celery import shared_task

from relay.submission import lockout


@shared_task(name="relay.lockout_tasks.purge_old_auth_failures", ignore_result=True)
def purge_old_auth_failures() -> int:
    return lockout.purge_old_failures()
