"""Mailbox passwords and credential secrets as Argon2id in Dovecot's "{ARGON2ID}" scheme.

Dovecot (passdb sql, default_pass_scheme or the "{SCHEME}" prefix) verifies these hashes itself, so IMAP/POP3
authenticate against the same table. Hashing costs tens of milliseconds by design: callers on an event loop
must run these functions in a thread.
"""

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings

SCHEME = "{ARGON2ID}"


def _hasher():
    return PasswordHasher(
        time_cost=settings.MAIL_HASH_TIME_COST,
        memory_cost=settings.MAIL_HASH_MEMORY_KIB,
        parallelism=settings.MAIL_HASH_PARALLELISM,
        type=Type.ID,
    )


def make_hash(password: str) -> str:
    return SCHEME + _hasher().hash(password)


def check_hash(password: str, stored: str) -> bool:
    if not stored or not stored.startswith(SCHEME):
        return False
    try:
        return _hasher().verify(stored[len(SCHEME):], password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against this keeps the time of an unknown-user attempt close to a known one's.
_DUMMY_HASH = None


def check_dummy(password: str) -> bool:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = make_hash("no such user: equalise timing")
    check_hash(password, _DUMMY_HASH)
    return False
