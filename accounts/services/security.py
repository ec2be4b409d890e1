"""Panel sign-in hardening: throttling, two-factor (TOTP and recovery codes), and the list of signed-in sessions.

Two-factor is required for support staff and optional for everyone else; whoever has a confirmed device is asked
for a code at every sign-in. The password step does not sign the user in when a code is due: it leaves a pending
sign-in in the session that only a valid code (or a recovery code) completes.
"""

import time
from base64 import b32encode
from datetime import timedelta

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, PanelLoginFailure, PanelSession, User
from accounts.normalize import login_key
from accounts.selectors import may_sign_in
from accounts.services.audit_log import audit
from accounts.services.suspension import end_sessions

RECOVERY_CODES = 10
SEEN_KEY = "hm_seen"  # when the middleware last refreshed this session's listing


# --- throttling --------------------------------------------------------------------------------------------


def throttle_message(*, username: str, client_ip: str | None, now=None) -> str | None:
    """Why a sign-in attempt is refused before the password is even checked, or None.

    Failures are counted per client address and per username in its canonical spelling (accounts.normalize.
    login_key, the one the mailbox lookup reads). Too many from one address refuse that address. Too many for one
    username from one address refuse that pair. Too many for one username from anywhere only slow it down: an
    address that has failed for it within the window is refused for it, but its owner, from an address that has
    not been failing, still signs in with the right password (OWASP ASVS 2.2.1: anti-automation must not make an
    account lockout, and usernames are guessable).
    """
    now = now or timezone.now()
    window = settings.PANEL_LOGIN_FAILURE_WINDOW
    since = now - timedelta(seconds=window)
    recent = PanelLoginFailure.objects.filter(created_at__gte=since)
    minutes = max(window // 60, 1)
    if client_ip and recent.filter(client_ip=client_ip).count() >= settings.PANEL_LOGIN_MAX_FAILURES_PER_IP:
        return ngettext("Too many failed sign-ins from your address. Wait %(minutes)d minute and try again.",
                        "Too many failed sign-ins from your address. Wait %(minutes)d minutes and try again.",
                        minutes) % {"minutes": minutes}
    key = _key(username)
    if key and client_ip:
        from_here = recent.filter(username=key, client_ip=client_ip).count()
        slowed = from_here and recent.filter(username=key).count() >= settings.PANEL_LOGIN_MAX_FAILURES
        if from_here >= settings.PANEL_LOGIN_MAX_FAILURES or slowed:
            return ngettext("Too many failed sign-ins for this username from your address. Wait %(minutes)d minute "
                            "and try again, or ask support to help you.",
                            "Too many failed sign-ins for this username from your address. Wait %(minutes)d minutes "
                            "and try again, or ask support to help you.", minutes) % {"minutes": minutes}
    return None


def _key(username: str | None) -> str:
    return login_key(username)[:150]


def record_login_failure(*, username: str, client_ip: str | None) -> None:
    PanelLoginFailure.objects.create(username=_key(username), client_ip=client_ip)


def clear_login_failures(*, username: str, client_ip: str | None = None) -> None:
    """After a sign-in: the failures of this username from this address (the owner's own typos) are forgotten;
    an attacker's, from elsewhere, keep counting."""
    PanelLoginFailure.objects.filter(username=_key(username), client_ip=client_ip).delete()


# --- sessions ----------------------------------------------------------------------------------------------


def session_touch(request) -> None:
    """Record or refresh the listing of the request's session (at sign-in, then at most once a refresh interval)."""
    request.session[SEEN_KEY] = time.time()
    if not request.session.session_key:
        request.session.save()
    key = request.session.session_key
    PanelSession.objects.update_or_create(
        session_key=key,
        defaults={"user": request.user, "last_seen_at": timezone.now(),
                  "client_ip": request.META.get("REMOTE_ADDR") or None,
                  "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300]},
    )


def _live_session_keys(now=None):
    return Session.objects.filter(expire_date__gt=now or timezone.now()).values("session_key")


def sessions_of(user: User):
    """The user's listed sessions that are still signed in (a signed-out one lingers until the upkeep task)."""
    qs = PanelSession.objects.filter(user=user).order_by("-last_seen_at")
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        qs = qs.filter(session_key__in=_live_session_keys())
    return qs


def session_revoke(*, actor: User, panel_session: PanelSession, client_ip: str | None = None) -> None:
    if panel_session.user_id != actor.pk:
        raise PermissionDenied("Not your session.")
    with transaction.atomic():
        audit(actor=actor, action="user.session_revoke", obj=actor,
              before={"session": panel_session.session_key[:8], "client_ip": panel_session.client_ip},
              client_ip=client_ip)
        end_sessions([panel_session.session_key])


def sessions_revoke_others(*, actor: User, current_key: str | None, client_ip: str | None = None) -> int:
    """Sign out every other browser of this user; returns how many."""
    keys = list(PanelSession.objects.filter(user=actor).exclude(session_key=current_key or "")
                .values_list("session_key", flat=True))
    with transaction.atomic():
        audit(actor=actor, action="user.session_revoke", obj=actor, before={"sessions": len(keys)},
              client_ip=client_ip)
        end_sessions(keys)
    return len(keys)


# --- two-factor --------------------------------------------------------------------------------------------


def otp_required(user: User) -> bool:
    return user.is_support


def has_otp(user: User) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def needs_code(user: User) -> bool:
    """Whether signing in takes a code after the password (or enrolment first, for staff without a device)."""
    return otp_required(user) or has_otp(user)


def totp_pending_device(user: User) -> TOTPDevice:
    """The unconfirmed TOTP device the enrolment page shows; made once, kept until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def totp_secret(device: TOTPDevice) -> str:
    return b32encode(device.bin_key).decode()


def qr_svg(text: str) -> str:
    return qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).to_string(encoding="unicode")


def totp_confirm(*, user: User, device: TOTPDevice, token: str, client_ip: str | None = None) -> None:
    if device.user_id != user.pk or device.confirmed:
        raise PermissionDenied("Not your enrolment.")
    if not device.verify_is_allowed()[0]:
        raise ValidationError({"token": _("Too many wrong codes: wait a few seconds, then enter the newest code.")})
    if not device.verify_token((token or "").strip().replace(" ", "")):
        raise ValidationError({"token": _("That code is not right. Check your device's clock and try the new code.")})
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit(actor=user, action="user.otp_enable", obj=user, after={"device": device.name}, client_ip=client_ip)


def verify_code(user: User, token: str) -> TOTPDevice | StaticDevice | None:
    """The device that accepts this code (an app's TOTP code or a single-use recovery code), or None."""
    token = (token or "").strip().replace(" ", "").replace("-", "")
    if not token:
        return None
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(token):
                return device
    return None


def recovery_codes_new(*, user: User, client_ip: str | None = None) -> list[str]:
    """Fresh single-use recovery codes (the old ones stop working). Shown once; django-otp keeps them."""
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes", defaults={"confirmed": True})
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
        audit(actor=user, action="user.recovery_codes", obj=user, client_ip=client_ip)
    return codes


def is_recovery_device(device) -> bool:
    return isinstance(device, StaticDevice)


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def otp_disable(*, user: User, client_ip: str | None = None) -> None:
    if otp_required(user):
        raise PermissionDenied(_("Support staff must keep two-factor sign-in."))
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        audit(actor=user, action="user.otp_disable", obj=user, client_ip=client_ip)


# --- the pending sign-in between the password and the code ---------------------------------------------------

PENDING_KEY = "hm_pending_login"


def pending_start(request, user: User) -> None:
    if request.user.is_authenticated:  # someone else signed in on this browser: they are signed out first
        logout(request)
    request.session.cycle_key()
    request.session[PENDING_KEY] = {"user": user.pk, "backend": user.backend, "at": time.time()}


def pending_user(request) -> User | None:
    data = request.session.get(PENDING_KEY)
    if not data or time.time() - data["at"] > settings.PANEL_LOGIN_CODE_SECONDS:
        return None
    user = User.objects.filter(pk=data["user"], is_active=True).first()
    if user is None or not may_sign_in(user):  # suspended between the password and the code
        return None
    user.backend = data["backend"]
    return user


def pending_clear(request) -> None:
    request.session.pop(PENDING_KEY, None)


# --- password reset links ----------------------------------------------------------------------------------

RESET_LINKS_PER_HOUR = 3


def password_reset_request(*, user: User, client_ip: str | None = None, now=None) -> bool:
    """Whether a reset link may be mailed to this user now; if so the request is audited (the user, their customer
    and support see it). Past RESET_LINKS_PER_HOUR within an hour nothing is mailed: the form cannot be used to
    flood someone's inbox, and the page answers the same either way."""
    now = now or timezone.now()
    recent = AuditEntry.objects.filter(action="user.password_reset_request", object_type="user",
                                       object_id=str(user.pk), created_at__gte=now - timedelta(hours=1))
    if recent.count() >= RESET_LINKS_PER_HOUR:
        return False
    audit(actor=None, action="user.password_reset_request", obj=user, after={"username": user.get_username()},
          client_ip=client_ip)
    return True


# --- upkeep ------------------------------------------------------------------------------------------------


def purge_stale(*, now=None) -> dict[str, int]:
    """Drop sign-in failures older than the window and listings of sessions that ended (expired, signed out)."""
    now = now or timezone.now()
    failures, _ = PanelLoginFailure.objects.filter(
        created_at__lt=now - timedelta(seconds=settings.PANEL_LOGIN_FAILURE_WINDOW)).delete()
    sessions = 0
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        sessions, _ = PanelSession.objects.exclude(session_key__in=_live_session_keys(now)).delete()
    return {"login_failures": failures, "sessions": sessions}
