"""Periodic upkeep of the AUTH failure counts (scheduled in hostingmail/celery.py)."""

from celery import shared_task

from relay import lockout


@shared_task(ignore_result=True)
def purge_old_auth_failures() -> int:
    return lockout.purge_old_failures()
