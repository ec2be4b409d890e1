"""API keys: created with a secret shown once, checked on every API request, revoked.

A key is `hm_<prefix>_<secret>`: the prefix finds the row, the secret (192 random bits) is checked against its
HMAC-SHA-256 under settings.API_KEY_HASH_SECRET in constant time. A random secret of that length needs no slow
hash (nothing to guess from a leaked table), and the API answers in microseconds instead of an Argon2 round.
"""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import hashing
from accounts.models import ApiIdempotencyKey, ApiKey, User
from accounts.networks import InvalidNetwork, address_in, parse_networks
from accounts.selectors import may_sign_in
from accounts.services.audit_log import audit, snapshot

PREFIX = "hm_"
# Roles a key may act as: the panel's administrators. A mailbox owner manages one mailbox, from the panel.
KEY_ROLES = (User.Role.SUPPORT, User.Role.RESELLER, User.Role.CUSTOMER)
# last_used_* is written at most this often per key: a busy billing system must not write a row per request.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    secret: str  # the whole key, shown once, never stored


def _digest(secret: str) -> str:
    return hashing.keyed_digest(settings.API_KEY_HASH_SECRET.encode(), secret)


def api_key_create(*, actor: User | None, user: User, name: str, read_only: bool = False,
                   allowed_networks: str = "", expires_at: datetime | None = None,
                   client_ip: str | None = None) -> NewApiKey:
    """A key acting as `user`. People create keys for themselves; commands (actor None) for anyone."""
    if actor is not None and actor.pk != user.pk:
        raise PermissionDenied("An API key acts as the user who creates it.")
    if user.role not in KEY_ROLES:
        raise PermissionDenied("API keys are for support staff, reseller admins and customers.")
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = _("Enter a name.")
    elif len(name) > 100:
        errors["name"] = _("Use at most 100 characters.")
    try:
        networks = parse_networks(allowed_networks or "")
    except InvalidNetwork as exc:
        errors["allowed_networks"] = exc.messages
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = _("The expiry must be in the future.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if ApiKey.objects.filter(user=user, name__iexact=name).exists():
            raise ValidationError({"name": _("You already have a key named “%(name)s”.") % {"name": name}})
        prefix = secrets.token_hex(6)
        while ApiKey.objects.filter(prefix=prefix).exists():
            prefix = secrets.token_hex(6)
        secret = f"{PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
        api_key = ApiKey.objects.create(
            user=user, name=name, prefix=prefix, secret_hash=_digest(secret), read_only=read_only,
            allowed_networks="\n".join(str(network) for network in networks), expires_at=expires_at)
        audit(actor=actor, action="api_key.create", obj=user.customer or user.reseller or user,
              after={**snapshot(api_key), "user": user.get_username()}, client_ip=client_ip)
    return NewApiKey(api_key=api_key, secret=secret)


def api_key_revoke(*, actor: User | None, api_key: ApiKey, client_ip: str | None = None) -> ApiKey:
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().select_related("user").get(pk=api_key.pk)
        if api_key.revoked_at is not None:
            return api_key
        before = snapshot(api_key)
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        user = api_key.user
        audit(actor=actor, action="api_key.revoke", obj=user.customer or user.reseller or user, before=before,
              after={**snapshot(api_key), "user": user.get_username()}, client_ip=client_ip)
    return api_key


def api_key_authenticate(secret: str, *, client_ip: str | None, now: datetime | None = None) -> ApiKey | None:
    """The live key this secret is, used from an address it allows, with its user; None otherwise (one answer for
    every reason, as SMTP AUTH gives). Records when and from where it was last used."""
    now = now or timezone.now()
    parts = (secret or "").split("_", 2)  # the random part may hold "_" too
    if len(parts) != 3 or f"{parts[0]}_" != PREFIX:
        return None
    api_key = ApiKey.objects.select_related("user", "user__customer", "user__reseller").filter(prefix=parts[1]).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _digest(secret)):
        return None
    if api_key.revoked_at is not None or (api_key.expires_at is not None and api_key.expires_at <= now):
        return None
    if api_key.allowed_networks and not address_in(client_ip or "", parse_networks(api_key.allowed_networks)):
        return None
    if api_key.user.role not in KEY_ROLES or not may_sign_in(api_key.user):
        return None
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_EVERY or \
            api_key.last_used_ip != client_ip:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now, last_used_ip=client_ip)
        api_key.last_used_at, api_key.last_used_ip = now, client_ip
    return api_key


def idempotency_keys_purge_old(*, now: datetime | None = None) -> int:
    """Idempotency-Keys older than API_IDEMPOTENCY_HOURS: no longer honoured, so no longer kept."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _ = ApiIdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
