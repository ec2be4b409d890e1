"""Periodic upkeep of the sending-quota buckets (scheduled in hostingmail/celery.py)."""

from celery import shared_task

from accounts import quotas


@shared_task(ignore_result=True)
def purge_old_usage() -> int:
    return quotas.purge_old_usage()
