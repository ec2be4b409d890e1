"""Handing committed messages to the delivery workers: the relay after an accept, the sweep, support's actions,
a new DSN. The database is the truth, so this only says "look now"; a notice that does not reach the broker
costs a delay, never a message (the periodic sweep finds every due message).

The task is named, not imported: the relay process never loads the worker's code (relay.delivery).
"""

import logging

from celery import current_app
from django.conf import settings

log = logging.getLogger("relay.delivery")

DELIVER_MESSAGES = "relay.tasks.deliver_messages"


def send(name: str, args: list) -> None:
    """Publish the task `name`; with CELERY_TASK_ALWAYS_EAGER (development), run it here, as `delay` would."""
    app = current_app
    if app.conf.task_always_eager:
        # send_task ignores eager mode: the task runs here, so its module is imported here (never in the relay's
        # production configuration, which has a broker).
        app.loader.import_default_modules()
        app.tasks[name].apply(args=args)
    else:
        app.send_task(name, args=args)


def enqueue(message_ids: list[int]) -> None:
    """Ask the workers to deliver these messages, DELIVERY_TASK_MESSAGES a task."""
    size = max(settings.DELIVERY_TASK_MESSAGES, 1)
    for start in range(0, len(message_ids), size):
        chunk = list(message_ids[start:start + size])
        try:
            send(DELIVER_MESSAGES, [chunk])
        except Exception as error:  # whatever the broker's client raises
            log.warning("could not hand messages %s to the delivery workers: %s", chunk, error)
