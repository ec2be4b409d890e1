"""Every panel page sends an anonymous visitor to the sign-in page; only the mail clients' setup, the password reset
pages and the brand stylesheet (the sign-in page uses them) are public."""

import re

import pytest
from django.urls import URLPattern, URLResolver

from accounts import urls

pytestmark = pytest.mark.django_db
PUBLIC = {"autoconfig", "autoconfig_wellknown", "autodiscover", "password_reset", "password_reset_done",
          "password_reset_confirm", "password_reset_complete", "brand_css", None}


def _panel_paths():
    for pattern in urls.urlpatterns:
        if isinstance(pattern, URLResolver):  # the namespaced consoles: tests/test_authorization_matrix.py
            continue
        assert isinstance(pattern, URLPattern)
        if pattern.name in PUBLIC:
            continue
        route = str(pattern.pattern)
        yield pattern.name, "/" + re.sub(r"<int:\w+>", "1", route).replace("<str:kind>", "mailboxes")


@pytest.mark.parametrize("name, path", list(_panel_paths()))
def test_anonymous_is_sent_to_sign_in(client, name, path):
    for method in (client.get, client.post):
        response = method(path)
        assert response.status_code == 302 and response["Location"].startswith(f"/login/?next={path}"), name
