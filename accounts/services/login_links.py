"""One-time sign-in links for panel users: a reseller's billing system (or support, or the customer's own scripts)
asks the API for one and sends the browser to it (single sign-on).

A link is `hmsso_<random>`: 256 random bits, stored as a keyed hash like an API key (a leaked table signs no one
in), valid for settings.LOGIN_LINK_SECONDS and for one use — the use is one conditional UPDATE, so two requests
racing with the same link sign in at most once. The token never reaches the audit log.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.models import LoginLink, User
from accounts.selectors import may_sign_in, panel_users_visible_to
from accounts.services.audit_log import audit

PREFIX = "hmsso_"


@dataclass(frozen=True)
class NewLoginLink:
    link: LoginLink
    token: str  # shown once, never stored


def _digest(token: str) -> str:
    key = b"hostingmail login link\0" + settings.API_KEY_HASH_SECRET.encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def login_link_create(*, actor: User | None, user: User, client_ip: str | None = None) -> NewLoginLink:
    """A link signing `user` in, for an actor who administers that user (commands, actor None: anyone's)."""
    if actor is not None and not panel_users_visible_to(actor).filter(pk=user.pk).exists():
        raise PermissionDenied("Not one of your customers' users.")
    token = PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(seconds=settings.LOGIN_LINK_SECONDS)
    with transaction.atomic():
        link = LoginLink.objects.create(user=user, token_hash=_digest(token), expires_at=expires_at,
                                        created_by=actor if actor is not None and actor.pk else None)
        audit(actor=actor, action="user.login_link", obj=user.customer or user.reseller or user,
              after={"username": user.get_username(), "expires_at": expires_at}, client_ip=client_ip)
    return NewLoginLink(link=link, token=token)


def login_link_user(token: str) -> User | None:
    """Whom a link would sign in now (unused, unexpired, the user still allowed in), without using it."""
    link = LoginLink.objects.select_related("user").filter(
        token_hash=_digest(token or ""), used_at__isnull=True, expires_at__gt=timezone.now()).first()
    if link is None or not may_sign_in(link.user):
        return None
    return link.user


def login_link_use(*, token: str, client_ip: str | None = None) -> User | None:
    """Use a link: the user it signs in, or None when it is unknown, used, expired, or its user may not sign in
    (suspended since). A link is used up by this call whatever follows (a code still due, a refused user)."""
    now = timezone.now()
    with transaction.atomic():
        used = LoginLink.objects.filter(token_hash=_digest(token or ""), used_at__isnull=True,
                                        expires_at__gt=now).update(used_at=now, used_ip=client_ip)
        if used != 1:
            return None
        link = LoginLink.objects.select_related("user").get(token_hash=_digest(token))
        user = link.user
        if not may_sign_in(user):
            return None
        audit(actor=user, action="user.login_link_used", obj=user.customer or user.reseller or user,
              after={"username": user.get_username()}, client_ip=client_ip)
    return user


def purge_used_login_links(*, now=None) -> int:
    """Links used or expired a day ago: nothing can use them any more."""
    cutoff = (now or timezone.now()) - timedelta(days=1)
    deleted, _ = LoginLink.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
