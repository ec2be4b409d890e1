"""Telling the relay's workers to act once a change is committed, by task name (accounts never imports relay).

Only a "look now": the change itself is in the database, and the workers' sweep finds what a lost notice missed
(held mail of a restored customer, a pending hold request), so a broker that is down costs a delay, never the
change and never an error page.
"""

import logging

from celery import current_app
from django.db import transaction

log = logging.getLogger("accounts.workers")


def _send(name: str, args: list, kwargs: dict) -> None:
    try:
        current_app.send_task(name, **({"args": args} if args else {}), **({"kwargs": kwargs} if kwargs else {}))
    except Exception as error:  # whatever the broker's client raises
        log.warning("could not reach the workers for %s (the sweep catches up): %s", name, error)


def notify_after_commit(name: str, *, args: list = (), kwargs: dict | None = None) -> None:
    args, kwargs = list(args), dict(kwargs or {})
    transaction.on_commit(lambda: _send(name, args, kwargs))
