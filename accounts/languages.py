"""The panel's language for a person: their own setting (User.language) when they have one, else what their browser
says (the language cookie set by the sign-in page's switcher, then Accept-Language: Django's LocaleMiddleware).
Mail written for a person (a password-reset link, a quarantine digest) is in that person's language; mail that is
protocol (DSNs) stays English.
"""

from django.conf import settings
from django.utils import translation

from accounts.models import Mailbox, User


def is_supported(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


def language_of(user: User | None) -> str:
    """The language to write to this user in: their setting, or the site's default."""
    code = getattr(user, "language", "") or ""
    return code if is_supported(code) else settings.LANGUAGE_CODE


def mailbox_language(mailbox: Mailbox) -> str:
    """The language for mail to a mailbox: its owner's setting once they have signed in to the panel, else the
    setting of the mailbox's customer's panel users (the first who chose one), else the site's default."""
    owner = User.objects.filter(mailbox=mailbox).exclude(language="").values_list("language", flat=True).first()
    if owner and is_supported(owner):
        return owner
    for code in (User.objects.filter(customer_id=mailbox.domain.customer_id).exclude(language="")
                 .order_by("pk").values_list("language", flat=True)):
        if is_supported(code):
            return code
    return settings.LANGUAGE_CODE


def set_language_cookie(response, code: str) -> None:
    """The cookie Django's set_language view sets, so that LocaleMiddleware picks the same language for the sign-in
    page after a sign-out."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY, samesite=settings.LANGUAGE_COOKIE_SAMESITE)


def delete_language_cookie(response) -> None:
    response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH,
                           domain=settings.LANGUAGE_COOKIE_DOMAIN, samesite=settings.LANGUAGE_COOKIE_SAMESITE)


class UserLanguageMiddleware:
    """After AuthenticationMiddleware (and LocaleMiddleware): a signed-in user's own language wins over the
    browser's for the whole request, and the language cookie follows it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        code = ""
        if user is not None and user.is_authenticated:
            code = user.language if is_supported(user.language) else ""
        if code:
            translation.activate(code)
            request.LANGUAGE_CODE = code
        response = self.get_response(request)
        # Also on the response that signs the user out: the sign-in page after it keeps their language. The
        # language page sets (or clears) the cookie itself when the setting changes: its answer stands.
        if code and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != code \
                and settings.LANGUAGE_COOKIE_NAME not in response.cookies:
            set_language_cookie(response, code)
        return response
