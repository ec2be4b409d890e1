from django.test import RequestFactory, override_settings
from django.urls import reverse

from hostingmail.middleware import RealClientIpMiddleware


def _remote_addr_seen(remote: str, forwarded: str | None) -> str:
    seen = {}

    def view(request):
        seen["ip"] = request.META["REMOTE_ADDR"]

    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    RealClientIpMiddleware(view)(RequestFactory().get("/", **extra))
    return seen["ip"]


@override_settings(TRUSTED_PROXIES=["127.0.0.1", "10.0.0.0/8"])
def test_a_trusted_proxy_hands_on_the_client_address():
    assert _remote_addr_seen("127.0.0.1", "198.51.100.7") == "198.51.100.7"
    # Hops added by other trusted proxies are skipped; a client-written prefix is not believed.
    assert _remote_addr_seen("127.0.0.1", "1.2.3.4, 198.51.100.7, 10.1.2.3") == "198.51.100.7"


@override_settings(TRUSTED_PROXIES=["127.0.0.1"])
def test_a_header_from_an_untrusted_peer_is_ignored():
    assert _remote_addr_seen("203.0.113.9", "198.51.100.7") == "203.0.113.9"
    assert _remote_addr_seen("127.0.0.1", "not-an-address") == "127.0.0.1"
    assert _remote_addr_seen("127.0.0.1", None) == "127.0.0.1"


@override_settings(TRUSTED_PROXIES=[])
def test_without_trusted_proxies_remote_addr_stands():
    assert _remote_addr_seen("127.0.0.1", "198.51.100.7") == "127.0.0.1"


def test_a_partial_request_after_the_session_ended_opens_the_sign_in_page(client, cast):
    url = reverse("domain_check", args=[cast.a.domain.pk])
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.headers["HX-Redirect"].startswith(reverse("login"))
    # A plain request still gets the ordinary redirect.
    response = client.post(url)
    assert response.status_code == 302 and "HX-Redirect" not in response.headers
