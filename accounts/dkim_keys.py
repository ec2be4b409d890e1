"""DKIM private keys at rest: encrypted (Fernet: AES-128-CBC with HMAC-SHA256) under DKIM_KEY_ENCRYPTION_KEY.

A database dump or a read-only SQL role (Dovecot's, a reporting tool's) then holds no key that signs mail as a
customer's domain. The worker decrypts a key only where it signs (relay.delivery.dkim).
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PEM_START = "-----BEGIN"


class DkimKeyError(Exception):
    """The stored key cannot be decrypted with any configured key."""


def _fernet() -> MultiFernet:
    keys = list(settings.DKIM_KEY_ENCRYPTION_KEY)
    if not keys:
        # Development default: derived from SECRET_KEY, so `make run` needs nothing more.
        digest = hashlib.sha256(b"hostingmail dkim key encryption\0" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    # The first key encrypts; every key listed decrypts, so a new key can be put first and old ones kept.
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt_private_key(pem: str) -> str:
    if not pem:
        return ""
    return _fernet().encrypt(pem.encode()).decode("ascii")


def decrypt_private_key(stored: str) -> str:
    """The PEM key from its stored form; a key stored before encryption (PEM) is returned as it is."""
    if not stored or stored.startswith(PEM_START):
        return stored
    try:
        return _fernet().decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise DkimKeyError("the DKIM key cannot be decrypted: is DKIM_KEY_ENCRYPTION_KEY the one it was stored "
                           "under?") from None


def is_encrypted(stored: str) -> bool:
    return bool(stored) and not stored.startswith(PEM_START)
