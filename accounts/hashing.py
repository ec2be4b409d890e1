"""Mailbox passwords as Argon2id in Dovecot's "{ARGON2ID}" scheme; SMTP credential secrets as a keyed fast hash.

Dovecot (passdb sql, default_pass_scheme or the "{SCHEME}" prefix) verifies mailbox hashes itself, so IMAP/POP3
authenticate against the same table. Hashing costs tens of milliseconds by design: callers on an event loop
must run these functions in a thread.

A credential's secret is generated here with 192 random bits: no guess can find it, so a slow hash would protect
nothing and only cost each login an Argon2 round. It is stored as HMAC-SHA-256 under
settings.SMTP_CREDENTIAL_HASH_SECRET ("{HMAC-SHA256}<key id>$<hex>", about a microsecond to check); Dovecot never
reads credentials (its password_query reads mailboxes only). A hash made before, in the Argon2 scheme or under an
earlier key, still verifies, and `secret_hash_is_current` tells the caller to store a new one.
"""

import base64
import ctypes
import functools
import hashlib
import hmac
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

import nacl.exceptions
import nacl.pwhash.argon2id
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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
    """The cost parameters come from the hash itself: no settings needed (this also runs in worker processes).

    An argon2id hash is verified by libsodium (PyNaCl), whose Argon2 picks the CPU's vector instructions at run
    time: the same hash and answer at 20-25 % less CPU than argon2-cffi's portable build (bench/argon2_params.py),
    which is every cold mailbox login's main cost. argon2-cffi, which makes the hashes, verifies anything else."""
    if _sodium_reads(encoded):
        try:
            return nacl.pwhash.argon2id.verify(encoded.encode("ascii"), password.encode("utf-8"))
        except nacl.exceptions.InvalidkeyError:  # a mismatch
            return False
    try:
        return PasswordHasher(type=Type.ID).verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def _sodium_reads(encoded: str) -> bool:
    """Whether libsodium verifies this hash as Argon2 defines it: libsodium answers a mismatch and a hash it
    cannot read alike, so it is asked only about hashes within its limits (those make_hash makes are)."""
    try:
        params = extract_parameters(encoded)
    except InvalidHashError:
        return False
    return encoded.isascii() and (params.type is Type.ID and params.version == 19 and params.salt_len >= 8 and params.hash_len >= 16
            and params.time_cost >= 1 and params.memory_cost >= 8 * params.parallelism
            and params.memory_cost * 1024 <= nacl.pwhash.argon2id.MEMLIMIT_MAX)


def check_hash(password: str, stored: str) -> bool:
    if stored and stored.startswith(SECRET_SCHEME):
        return check_secret_hash(password, stored)
    if not stored or not stored.startswith(SCHEME):
        return False
    pool = getattr(_local, "pool", None)
    if pool is not None:
        return pool.submit(_verify, stored[len(SCHEME):], password).result()
    return _verify(stored[len(SCHEME):], password)


def _worker_start(parent: int, first: str = "") -> None:
    """Ends with the process that started it, even when that one is killed by SIGKILL (which runs no shutdown of
    the pool): else the worker, and multiprocessing's resource tracker (which waits for every holder of its pipe),
    ran on as orphans.

    The lowest priority there is: hashing runs on CPU nobody else wants. Under SCHED_IDLE (Linux) a waking
    event loop or database takes the CPU from a hash at once; at nice 19 it could still wait a few ms for it.

    `first`, a hash at the current cost, is verified once here, so the first login's verification does not pay for
    loading and setting up what a verification needs."""
    watch_parent(parent, lambda: os._exit(1))
    try:
        os.nice(19)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # lowering one's own priority needs no rights
    except (AttributeError, OSError):
        pass
    _keep_freed_memory()
    if first:
        _verify(first, "")


# glibc's mallopt() parameters.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def _keep_freed_memory() -> None:
    """Reuse one hash's memory for the next. glibc maps each of Argon2's blocks (64 MiB at the earlier default cost)
    afresh (above its mmap threshold) and unmaps it after: 16 384 page faults, the kernel clearing 64 MiB and a TLB
    shootdown per hash, ~13 % of its CPU time (44 of ~320 ms). Served from the heap and kept there, the memory is faulted in once per
    worker. This serves argon2-cffi's verifications; libsodium maps its own memory for each, and is faster still."""
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
                               initializer=_worker_start, initargs=(os.getpid(), _matching_nothing()))


def _matching_nothing() -> str:
    """An encoded hash at the current cost that no password matches (its digest is all zeros): verifying it costs
    what a real one does, and it is made without hashing anything."""
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode().rstrip("=")

    return (f"$argon2id$v=19$m={settings.MAIL_HASH_MEMORY_KIB},t={settings.MAIL_HASH_TIME_COST},"
            f"p={settings.MAIL_HASH_PARALLELISM}${b64(os.urandom(16))}${b64(bytes(32))}")


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


# --- secrets we generated: HMAC-SHA-256 ------------------------------------------------------------------------

SECRET_SCHEME = "{HMAC-SHA256}"


@functools.lru_cache(maxsize=8)
def _keys(current: str, previous: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """(key id, key), the current key first. The id is a MAC of a constant: it tells which key made a hash and
    nothing about the key."""
    keys = []
    for secret in (current, *previous):
        key = secret.encode()
        keys.append((hmac.new(key, b"hostingmail key id", hashlib.sha256).hexdigest()[:8], key))
    return tuple(keys)


def _secret_keys() -> tuple[tuple[str, bytes], ...]:
    if not settings.SMTP_CREDENTIAL_HASH_SECRET:
        raise ImproperlyConfigured("SMTP_CREDENTIAL_HASH_SECRET (or SECRET_KEY) is needed to store SMTP credentials")
    return _keys(settings.SMTP_CREDENTIAL_HASH_SECRET, tuple(settings.SMTP_CREDENTIAL_HASH_PREVIOUS_SECRETS))


def keyed_digest(key: bytes, value: str) -> str:
    """HMAC-SHA-256 in hex (any string: a client may send octets that are not UTF-8, kept as surrogates)."""
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def make_secret_hash(secret: str) -> str:
    """For a secret of at least 128 random bits that we generated; never for a password a person chose."""
    key_id, key = _secret_keys()[0]
    return f"{SECRET_SCHEME}{key_id}${keyed_digest(key, secret)}"


def check_secret_hash(secret: str, stored: str) -> bool:
    key_id, _, digest = stored.removeprefix(SECRET_SCHEME).partition("$")
    key = dict(_secret_keys()).get(key_id)
    if key is None:  # a key no longer listed: no secret matches
        return False
    return hmac.compare_digest(digest.encode(), keyed_digest(key, secret).encode())


def secret_hash_is_current(stored: str) -> bool:
    """Whether a credential's stored hash is in the keyed scheme under the current key (else: store a new one at
    its next successful login)."""
    return stored.startswith(f"{SECRET_SCHEME}{_secret_keys()[0][0]}$")


def check_dummy_secret(secret: str) -> bool:
    """An unknown credential's refusal costs what a known one's does."""
    hmac.compare_digest(b"0" * 64, keyed_digest(_secret_keys()[0][1], secret).encode())
    return False
