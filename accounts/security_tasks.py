"""Periodic upkeep of the panel's sign-in records (scheduled in hostingmail/celery.py)."""

from celery import shared_task

from accounts import security


@shared_task(ignore_result=True)
def purge_stale_sign_ins() -> dict[str, int]:
    return security.purge_stale()
