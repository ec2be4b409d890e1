"""Handing committed messages to the delivery workers: the relay after an accept, the sweep, support's actions,
a new DSN. The database is the truth, so this only says "look now"; a notice that does not reach the broker
costs a delay, never a message (the periodic sweep finds every due message).
"""

import logging

from django.conf import settings

log = logging.getLogger("relay.delivery")


def enqueue(message_ids: list[int]) -> None:
    """Ask the workers to deliver these messages, DELIVERY_TASK_MESSAGES a task (relay.tasks.deliver_messages)."""
    from relay.tasks import deliver_messages  # the task module imports the modules that import this one

    size = max(settings.DELIVERY_TASK_MESSAGES, 1)
    for start in range(0, len(message_ids), size):
        chunk = list(message_ids[start:start + size])
        try:
            deliver_messages.delay(chunk)
        except Exception as error:  # whatever the broker's client raises
            log.warning("could not hand messages %s to the delivery workers: %s", chunk, error)
