"""Keeps the list of signed-in sessions fresh and signs out users whose account was suspended meanwhile."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect

from accounts.selectors import may_sign_in
from accounts.services.security import SEEN_KEY, session_touch


class PanelSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        # Only sessions opened through the panel's sign-in carry the mark; checking at most once a refresh
        # interval keeps ordinary page views free of extra queries. Suspending ends sessions at once anyway.
        if user is not None and user.is_authenticated and SEEN_KEY in request.session:
            if time.time() - request.session[SEEN_KEY] > settings.PANEL_SESSION_REFRESH_SECONDS:
                if not may_sign_in(user):
                    logout(request)
                    messages.error(request, "Your account is suspended. Contact support.")
                    return redirect(settings.LOGIN_URL)
                session_touch(request)
        return self.get_response(request)
