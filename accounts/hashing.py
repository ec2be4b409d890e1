"""Mailbox passwords and credential secrets as Argon2id in Dovecot's "{ARGON2ID}" scheme.

Dovecot (passdb sql, default_pass_scheme or the "{SCHEME}" prefix) verifies these hashes itself, so IMAP/POP3
authenticate against the same table. Hashing costs tens of milliseconds by design: callers on an event loop
must run these functions in a thread.
"""

import ctypes
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings

from hostingmail.parentwatch import watch_parent

SCHEME = "{ARGON2ID}"

# A thread may hand its verifications to worker processes (the relay's hashing threads do): see process_pool().
_local = threading.local()


def _hasher():
    return PasswordHasher(
        time_cost=settings.MAIL_HASH_TIME_COST,
        memory_cost=settings.MAIL_HASH_MEMORY_KIB,
        parallelism=settings.MAIL_HASH_PARALLELISM,
        type=Type.ID,
    )


def make_hash(password: str) -> str:
    return SCHEME + _hasher().hash(password)


def _verify(encoded: str, password: str) -> bool:
    # The cost parameters come from the hash itself: no settings needed (this also runs in worker processes).
    try:
        return PasswordHasher(type=Type.ID).verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def check_hash(password: str, stored: str) -> bool:
    if not stored or not stored.startswith(SCHEME):
        return False
    pool = getattr(_local, "pool", None)
    if pool is not None:
        return pool.submit(_verify, stored[len(SCHEME):], password).result()
    return _verify(stored[len(SCHEME):], password)


def _worker_start(parent: int) -> None:
    """Ends with the process that started it, even when that one is killed by SIGKILL (which runs no shutdown of
    the pool): else the worker, and multiprocessing's resource tracker (which waits for every holder of its pipe),
    ran on as orphans.

    The lowest priority there is: hashing runs on CPU nobody else wants. Under SCHED_IDLE (Linux) a waking
    event loop or database takes the CPU from a hash at once; at nice 19 it could still wait a few ms for it."""
    watch_parent(parent, lambda: os._exit(1))
    try:
        os.nice(19)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # lowering one's own priority needs no rights
    except (AttributeError, OSError):
        pass
    _keep_freed_memory()


# glibc's mallopt() parameters.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def _keep_freed_memory() -> None:
    """Reuse one hash's memory for the next. glibc maps each of Argon2's 64 MiB blocks afresh (above its mmap
    threshold) and unmaps it after: 16 384 page faults, the kernel clearing 64 MiB and a TLB shootdown per hash,
    ~13 % of its CPU time (44 of ~320 ms). Served from the heap and kept there, the memory is faulted in once per
    worker."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): hashes as before
        return
    mallopt(_M_MMAP_MAX, 0)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for verifications; a thread that calls use_pool(pool) verifies through them.

    Argon2 fills tens of MB per hash: in a process of its own that memory's page faults and unmapping do not
    stall the threads of the process that asked (an event loop), and the hashing competes with them for CPU only
    through the kernel's scheduler, at a lower priority.
    """
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(os.getpid(),))


def use_pool(pool: ProcessPoolExecutor | None) -> None:
    _local.pool = pool


# Verifying against this keeps the time of an unknown-user attempt close to a known one's.
_DUMMY_HASH = None


def check_dummy(password: str) -> bool:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = make_hash("no such user: equalise timing")
    check_hash(password, _DUMMY_HASH)
    return False
