"""Keeps the list of signed-in sessions fresh, ends idle sessions, and signs out users whose account was suspended
meanwhile."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import PanelSession
from accounts.selectors import may_sign_in
from accounts.services.security import SEEN_KEY, session_touch


def idle_seconds(user) -> int:
    """How long a session of this user may go without a request (support staff hold the most: a shorter time)."""
    if user.is_support:
        return settings.PANEL_SUPPORT_SESSION_IDLE_SECONDS
    return settings.PANEL_SESSION_IDLE_SECONDS


def _signed_out_note(seconds: int) -> str:
    if seconds >= 3600:
        hours = seconds // 3600
        return ngettext("You were signed out after %(count)d hour of inactivity. Sign in again.",
                        "You were signed out after %(count)d hours of inactivity. Sign in again.", hours) % {
            "count": hours}
    minutes = seconds // 60
    return ngettext("You were signed out after %(count)d minute of inactivity. Sign in again.",
                    "You were signed out after %(count)d minutes of inactivity. Sign in again.", minutes) % {
        "count": minutes}


class PanelSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        # Only sessions opened through the panel's sign-in carry the mark; checking at most once a refresh
        # interval keeps ordinary page views free of extra queries. Suspending ends sessions at once anyway.
        if user is not None and user.is_authenticated and SEEN_KEY in request.session:
            idle = idle_seconds(user)
            # The mark is refreshed at most once a refresh interval, so idle time is measured to within that.
            if time.time() - request.session[SEEN_KEY] > idle:
                return self._timed_out(request, idle)
            if time.time() - request.session[SEEN_KEY] > settings.PANEL_SESSION_REFRESH_SECONDS:
                if not may_sign_in(user):
                    logout(request)
                    messages.error(request, _("Your account is suspended. Contact support."))
                    return redirect(settings.LOGIN_URL)
                session_touch(request)
                # The stored session ends too once idle, should the browser never come back.
                request.session.set_expiry(idle)
        return self.get_response(request)

    @staticmethod
    def _timed_out(request, idle: int):
        key = request.session.session_key
        logout(request)
        PanelSession.objects.filter(session_key=key).delete()
        messages.info(request, _signed_out_note(idle))
        response = redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        # A fragment request opens the sign-in page as a whole page (django-htmx's middleware runs after this one).
        if request.headers.get("HX-Request") == "true":
            return HttpResponseClientRedirect(response["Location"])
        return response
