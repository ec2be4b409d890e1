"""accounts/middleware.py: an idle panel session ends (12 h by default, support staff 1 h); the next request goes to
the sign-in page."""

import time

import pytest
from django.urls import reverse

from accounts.models import PanelSession
from accounts.services.security import SEEN_KEY
from tests.support.factories import PASSWORD
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db


def _idle(client, seconds: float) -> None:
    """As if the last request of this session was `seconds` ago."""
    session = client.session
    session[SEEN_KEY] = time.time() - seconds
    session.save()


def _sign_in(client, user) -> None:
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_defaults_are_12_hours_and_1_hour_for_support(settings):
    assert settings.PANEL_SESSION_IDLE_SECONDS == 12 * 3600
    assert settings.PANEL_SUPPORT_SESSION_IDLE_SECONDS == 3600


def test_a_customer_session_idle_past_the_timeout_goes_to_the_sign_in_page(client, cast):
    _sign_in(client, cast.a.user)
    key = client.session.session_key
    _idle(client, 12 * 3600 + 5)
    response = client.get(reverse("mailbox_list"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('mailbox_list')}"
    assert client.get(reverse("dashboard")).status_code == 302  # signed out, not only redirected once
    assert not PanelSession.objects.filter(session_key=key).exists()
    page = client.get(response.url)
    assert "inactivity" in page.content.decode()


def test_a_customer_session_within_the_timeout_stays_and_is_extended(client, cast):
    _sign_in(client, cast.a.user)
    _idle(client, 12 * 3600 - 120)
    assert client.get(reverse("mailbox_list")).status_code == 200
    assert time.time() - client.session[SEEN_KEY] < 5  # the activity is recorded: idle time starts afresh
    assert client.session.get_expiry_age() <= 12 * 3600  # the stored session itself ends when idle too


def test_support_staff_time_out_sooner(client, cast):
    sign_in_verified(client, cast.support)
    _idle(client, 3600 + 5)
    response = client.get(reverse("support:home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    # A customer idle as long is still signed in.
    other = client.__class__()
    _sign_in(other, cast.b.user)
    _idle(other, 3600 + 5)
    assert other.get(reverse("dashboard")).status_code == 200


def test_the_timeout_is_a_setting(client, cast, settings):
    settings.PANEL_SESSION_IDLE_SECONDS = 600
    _sign_in(client, cast.a.user)
    _idle(client, 601)
    assert client.get(reverse("dashboard")).status_code == 302


def test_an_htmx_request_after_the_timeout_opens_the_sign_in_page_whole(client, cast):
    _sign_in(client, cast.a.user)
    _idle(client, 12 * 3600 + 5)
    response = client.post(reverse("mailbox_smtp", args=[cast.a.mailbox.pk]), {"enabled": "0"}, HTTP_HX_REQUEST="true")
    assert response.headers["HX-Redirect"].startswith(reverse("login"))
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.smtp_enabled  # nothing done for a timed-out session
