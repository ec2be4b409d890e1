from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static as static_url
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from accounts.views import security
from hostingmail import health, metrics_view

# The admin signs in through the panel's sign-in (throttled, two-factor) and needs a verified session.
admin.site.has_permission = lambda request: (request.user.is_active and request.user.is_staff
                                             and request.user.is_verified())

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico whatever the page links: send them to the SVG icon.
    path("favicon.ico", RedirectView.as_view(url=lazy(static_url, str)("favicon.svg"), permanent=True)),
    path("login/", security.login_view, name="login"),
    path("support/", include("hostingmail.support.urls")),
    # The REST API: /api/v1/..., its schema and docs (tests/hostingmail/api/ holds its authorization matrix).
    path("api/", include(("hostingmail.api.urls", "api"))),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Django's set_language (POST /i18n/setlang/): the language switcher of the pages before sign-in.
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("accounts.urls")),
    path("", include("relay.panel.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
