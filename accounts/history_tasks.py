"""Periodic rollup of sending totals for the charts (scheduled in hostingmail/celery.py)."""

from celery import shared_task

from accounts import sending_history


@shared_task(ignore_result=True)
def rollup_send_usage() -> int:
    return sending_history.rollup_send_usage()
