"""The audit log's writer: who did what to which object, before and after, when, from which address.

Customers and resellers read their audit log, so no row ever holds a secret. Redaction goes by what a value is,
not by a list kept per call site: a model field whose name marks a secret (passwords, hashes, keys, tokens), a
URL's password, and any text shaped like a hash or a PEM key are replaced wherever they appear in `before`,
`after` or the reason — whichever service wrote them.
"""

import re
from datetime import date, datetime
from decimal import Decimal

from django.db import models

from accounts.models import AuditEntry, Customer, Mailbox, Reseller, User

REDACTED = "[redacted]"

# Names of fields and keys that hold a secret, on any model: password hashes, secret hashes, DKIM and TOTP keys,
# verification and recovery tokens, API keys. A public key is named so and stays.
_SECRET_NAME = re.compile(r"password|passwd|secret|private|token|hash|otp|recovery|(^|_)key$|^key_",
                          re.IGNORECASE)
_PUBLIC_NAME = re.compile(r"public_key$", re.IGNORECASE)
# Text that is a secret whatever its key: password hashes in Django's and Dovecot's formats, PEM keys, Fernet tokens.
_SECRET_VALUE = re.compile(
    r"-----BEGIN|\$argon2|\{ARGON2|\{(SHA|SSHA|BLF|CRYPT|PBKDF2)[A-Z0-9-]*\}|^(pbkdf2_sha\d+|argon2|bcrypt|md5|sha1|scrypt)"
    r"(_sha256)?\$|^gAAAAA", re.IGNORECASE)
# A URL's userinfo password (smtp://user:password@host); the user name stays, so support can tell routes apart.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<password>\S*)@", re.IGNORECASE)


def is_secret_field(field: models.Field) -> bool:
    return is_secret_name(field.name) or isinstance(field, models.FileField)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _PUBLIC_NAME.search(name)


def redact_text(text: str) -> str:
    if _SECRET_VALUE.search(text):
        return REDACTED
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@" if m["password"] else m[0], text)


def redact(value, key: str = ""):
    """The value as the audit log may keep it: secrets replaced, recursively through dicts and lists."""
    if key and is_secret_name(key) and value not in ("", None, False, True):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return REDACTED  # message content, key material: never into the log
    return value


def snapshot(obj) -> dict:
    """The object's concrete fields for the audit log, secret fields left out by kind."""
    data = {}
    for field in obj._meta.concrete_fields:
        if is_secret_field(field):
            continue
        data[field.name] = field.value_from_object(obj)
    return redact(data)


def _tenant_of(obj) -> tuple[Customer | None, Reseller | None]:
    if isinstance(obj, Reseller):
        return None, obj
    if isinstance(obj, Customer):
        return obj, obj.reseller
    customer = getattr(obj, "customer", None)
    if customer is None and isinstance(obj, Mailbox):
        customer = obj.domain.customer
    if customer is None:  # an object of the reseller's own (a plan template)
        return None, getattr(obj, "reseller", None)
    return customer, customer.reseller


def audit(*, actor: User | None, action: str, obj, before: dict | None = None, after: dict | None = None,
          reason: str = "", client_ip: str | None = None) -> AuditEntry:
    customer, reseller = _tenant_of(obj)
    # A user authenticated by an API key carries it (hostingmail.api.authentication): the entry names the key.
    api_key = getattr(actor, "api_key", None)
    if api_key is not None:
        label = f"api-key:{api_key.name}"[:150]
    else:
        label = actor.get_username() if actor is not None else "system"
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        api_key=api_key,
        actor_label=label,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk),
        object_repr=redact_text(str(obj))[:300],
        customer=customer,
        reseller=reseller,
        before=redact(before or {}),
        after=redact(after or {}),
        reason=redact_text(reason)[:500],
        client_ip=client_ip,
    )
