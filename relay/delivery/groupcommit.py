"""Group commit among threads: the work of every thread that arrives while a round is under way, done in one go.

A worker process delivers in several threads; each needs a database round (a claim, its outcomes) of its own.
The first thread to arrive does its round; threads that arrive meanwhile wait, and the next of them (the
leader) then does the work of all who waited, in one transaction, while the others (followers) wait for their
results. Under load one round serves many deliveries; alone, a thread pays nothing extra.

(The relay's event loop batches differently, handing batches to a lane thread: relay.smtpd.threads.)
"""

import threading
from dataclasses import dataclass


class GroupCommit:
    """`func(items) -> results` for the items of every thread that arrives while a call is under way, in the
    thread that comes next (leader and followers): one database round of work for many deliveries.

    A result that is an exception is raised to its own caller only; an exception from `func` itself to every
    caller of that batch. The calling thread's own connection does the work, so a test's transaction sees it.
    """

    def __init__(self, func):
        self.func = func
        self.changed = threading.Condition()
        self.waiting: list[_Slot] = []
        self.busy = False

    def __call__(self, item):
        slot = _Slot(item)
        with self.changed:
            self.waiting.append(slot)
            while self.busy and not slot.done:
                self.changed.wait()
            if not slot.done:
                self.busy = True
                batch, self.waiting = self.waiting, []
        if not slot.done:
            try:
                results = self.func([s.item for s in batch])
            except BaseException as error:  # noqa: BLE001 -- every waiting caller gets it, the leader re-raises it
                results = [error] * len(batch)
            with self.changed:
                for waiting, result in zip(batch, results):
                    waiting.result, waiting.done = result, True
                self.busy = False
                self.changed.notify_all()
        if isinstance(slot.result, BaseException):
            raise slot.result
        return slot.result


@dataclass
class _Slot:
    item: object
    result: object = None
    done: bool = False
