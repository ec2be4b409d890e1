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

    Up to `rounds` calls run at once (each in its own thread and connection): with one, a thread that arrives just
    after a round started waits for that whole round, flush of the log included, before its own can start; with two,
    it starts at once while the other round's commit is flushed (PostgreSQL takes both; SQLite's single writer would
    only make the second wait inside the database). `rounds` may be a function, asked at the first call.

    A result that is an exception is raised to its own caller only; an exception from `func` itself to every
    caller of that batch. The calling thread's own connection does the work, so a test's transaction sees it.
    """

    def __init__(self, func, rounds=1):
        self.func = func
        self.rounds = rounds
        self.changed = threading.Condition()
        self.waiting: list[_Slot] = []
        self.busy = 0  # rounds under way

    def __call__(self, item):
        slot = _Slot(item)
        with self.changed:
            if callable(self.rounds):
                self.rounds = self.rounds()
            self.waiting.append(slot)
            # Taken by another thread's round: wait for it; not yet taken: lead the next round when one is free.
            while not slot.done and (slot.taken or self.busy >= self.rounds):
                self.changed.wait()
            lead = not slot.done
            if lead:
                self.busy += 1
                batch, self.waiting = self.waiting, []
                for waiting in batch:
                    waiting.taken = True
        if lead:
            try:
                results = self.func([s.item for s in batch])
            except BaseException as error:  # noqa: BLE001 -- every waiting caller gets it, the leader re-raises it
                results = [error] * len(batch)
            with self.changed:
                for waiting, result in zip(batch, results):
                    waiting.result, waiting.done = result, True
                self.busy -= 1
                self.changed.notify_all()
        if isinstance(slot.result, BaseException):
            raise slot.result
        return slot.result


@dataclass
class _Slot:
    item: object
    result: object = None
    done: bool = False
    taken: bool = False  # in a round under way
