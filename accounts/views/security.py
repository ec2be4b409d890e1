"""Sign-in (password, then a code when two-factor is on), two-factor enrolment, recovery codes, sessions."""

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from accounts.forms.languages import LanguageForm
from accounts.forms.security import CodeForm, LoginForm
from accounts.models import PanelSession
from accounts.services import login_links, security
from accounts.views.common import apply_errors, client_ip, code_url, shown_once_keep, shown_once_take

NEXT_KEY = "hm_login_next"


def _safe_next(request, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=request.is_secure()):
        return value
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _finish_login(request, user, device=None) -> None:
    if not request.user.is_authenticated:
        auth_login(request, user, backend=user.backend)
    if device is not None:
        django_otp.login(request, device)
    security.pending_clear(request)
    security.clear_login_failures(username=user.get_username(), client_ip=client_ip(request))
    security.session_touch(request)


def _code_user(request):
    """Whose code this page asks for: the signed-in user, or the one half-way through signing in."""
    if request.user.is_authenticated:
        return request.user
    return security.pending_user(request)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request):
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    user = request.user
    if user.is_authenticated and request.method == "GET" and security.needs_code(user) and not user.is_verified():
        return redirect(code_url(next_url))
    # A signed-in user sent here (e.g. by a page that needs another account) may sign in as someone else:
    # redirecting them back would loop.
    form = LoginForm(request, data=request.POST or None)
    blocked = None
    if request.method == "POST":
        ip = client_ip(request)
        username = request.POST.get("username", "")
        blocked = security.throttle_message(username=username, client_ip=ip)
        if blocked:
            form = LoginForm(request)
        elif form.is_valid():
            user = form.get_user()
            if security.needs_code(user):
                security.pending_start(request, user)
                request.session[NEXT_KEY] = next_url
                step = "security:code" if security.has_otp(user) else "security:enrol"
                return redirect(step)
            _finish_login(request, user)
            return redirect(next_url)
        else:
            security.record_login_failure(username=username, client_ip=ip)
    status = 429 if blocked else 200
    return render(request, "accounts/login.html", {"form": form, "blocked": blocked, "next": next_url}, status=status)


@require_GET
@never_cache
def login_link_view(request, token):
    """A one-time sign-in link (accounts.services.login_links): used once, then the same steps as the sign-in page
    — a user who has two-factor is asked for a code before the session is theirs."""
    user = login_links.login_link_use(token=token, client_ip=client_ip(request))
    if user is None:
        response = render(request, "accounts/security/link_invalid.html", status=410)
    else:
        user.backend = "django.contrib.auth.backends.ModelBackend"
        if security.needs_code(user):
            security.pending_start(request, user)
            request.session[NEXT_KEY] = resolve_url(settings.LOGIN_REDIRECT_URL)
            response = redirect("security:code" if security.has_otp(user) else "security:enrol")
        else:
            if request.user.is_authenticated and request.user.pk != user.pk:
                logout(request)
            _finish_login(request, user)
            response = redirect(settings.LOGIN_REDIRECT_URL)
    # The token is in this page's address: it must not leave in a Referer.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
def code_view(request):
    user = _code_user(request)
    if user is None:
        messages.error(request, _("Sign in again: the sign-in took too long."))
        return redirect("login")
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(_safe_next(request, request.GET.get("next")))
    if request.user.is_authenticated and request.GET.get("next"):
        request.session[NEXT_KEY] = _safe_next(request, request.GET["next"])
    if not security.has_otp(user):
        return redirect("security:enrol")
    form = CodeForm(request.POST or None)
    blocked = None
    if request.method == "POST":
        ip = client_ip(request)
        blocked = security.throttle_message(username=user.get_username(), client_ip=ip)
        if blocked:
            form = CodeForm()
        elif form.is_valid():
            device = security.verify_code(user, form.cleaned_data["token"])
            if device is not None:
                _finish_login(request, user, device)
                if security.is_recovery_device(device):
                    messages.warning(request, _("Recovery code used; %(left)d left.") % {
                        "left": security.recovery_codes_left(user)})
                return redirect(request.session.pop(NEXT_KEY, None) or settings.LOGIN_REDIRECT_URL)
            security.record_login_failure(username=user.get_username(), client_ip=ip)
            form.add_error("token", _("That code is not right. Try the newest code from your app, or a recovery "
                                      "code."))
    return render(request, "accounts/security/code.html", {"form": form, "blocked": blocked, "code_user": user},
                  status=429 if blocked else 200)


@never_cache
def enrol_view(request):
    user = _code_user(request)
    if user is None:
        return redirect("login")
    if security.has_otp(user) and not (request.user.is_authenticated and request.user.is_verified()):
        # Replacing an authenticator takes a code from the current one (or a recovery code) first.
        return redirect("security:code")
    device = security.totp_pending_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            security.totp_confirm(user=user, device=device, token=form.cleaned_data["token"],
                                  client_ip=client_ip(request))
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            _finish_login(request, user, device)
            codes = security.recovery_codes_new(user=user, client_ip=client_ip(request))
            messages.success(request, _("Two-factor sign-in is on."))
            return _show_codes(request, codes)
    return render(request, "accounts/security/enrol.html", {
        "form": form, "secret": security.totp_secret(device), "qr": security.qr_svg(device.config_url),
        "required": security.otp_required(user),
    })


def _show_codes(request, codes):
    # Post/redirect/get: the codes wait in the session for the one page that shows them.
    shown_once_keep(request, kind="recovery_codes", pk=request.user.pk, secret=codes)
    return redirect("security:recovery_codes_shown")


@login_required
@never_cache
def recovery_codes_shown(request):
    codes = shown_once_take(request, kind="recovery_codes", pk=request.user.pk)
    next_url = (request.session.pop(NEXT_KEY, None) if codes else None) or resolve_url(settings.LOGIN_REDIRECT_URL)
    heading = _("Recovery codes for %(username)s at %(host)s") % {"username": request.user.get_username(),
                                                                  "host": request.get_host()}
    text = "\n".join([heading, "", *codes, ""]) if codes else ""  # the download's content
    return render(request, "accounts/security/recovery_codes.html",
                  {"codes": codes, "codes_text": text, "next": next_url})


@login_required
def security_page(request):
    user = request.user
    sessions = security.sessions_of(user)
    return render(request, "accounts/security/page.html", {
        "has_otp": security.has_otp(user), "required": security.otp_required(user),
        "verified": user.is_verified(), "codes_left": security.recovery_codes_left(user),
        "sessions": sessions, "current_key": request.session.session_key,
        "language_form": LanguageForm(initial={"language": user.language}),
    })


@login_required
@require_POST
def recovery_codes_view(request):
    if not security.has_otp(request.user) or not request.user.is_verified():
        messages.error(request, _("Turn on two-factor sign-in (and sign in with a code) first."))
        return redirect("security:page")
    return _show_codes(request, security.recovery_codes_new(user=request.user, client_ip=client_ip(request)))


@login_required
@require_POST
def otp_disable_view(request):
    try:
        security.otp_disable(user=request.user, client_ip=client_ip(request))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Two-factor sign-in is off."))
    return redirect("security:page")


@login_required
@require_POST
def session_revoke_view(request, pk):
    panel_session = get_object_or_404(PanelSession.objects.filter(user=request.user), pk=pk)
    current = panel_session.session_key == request.session.session_key
    security.session_revoke(actor=request.user, panel_session=panel_session, client_ip=client_ip(request))
    if current:
        return redirect("login")
    messages.success(request, _("That session is signed out."))
    return redirect("security:page")


@login_required
@require_POST
def sessions_revoke_others_view(request):
    count = security.sessions_revoke_others(actor=request.user, current_key=request.session.session_key,
                                            client_ip=client_ip(request))
    messages.success(request, ngettext("%(count)d other session signed out.", "%(count)d other sessions signed out.",
                                       count) % {"count": count})
    return redirect("security:page")
