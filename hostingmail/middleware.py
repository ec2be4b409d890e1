"""The real client address behind a reverse proxy.

Audit entries, sign-in throttling and /metrics access use REMOTE_ADDR. Behind nginx that is the proxy, so when
the direct peer is one of TRUSTED_PROXIES, REMOTE_ADDR becomes the last address in X-Forwarded-For that is not
itself a trusted proxy. A header from anyone else is ignored: clients cannot choose their own address.
"""

import ipaddress

from django.conf import settings
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

from accounts.networks import address_in, parse_networks


def real_client_ip(remote_addr: str, forwarded_for: str, networks) -> str:
    if not networks or not address_in(remote_addr, networks):
        return remote_addr
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not address_in(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote_addr  # garbage in the header: keep the proxy's address rather than guess
    return remote_addr


class RealClientIpMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.networks = parse_networks(settings.TRUSTED_PROXIES)

    def __call__(self, request):
        meta = request.META
        meta["REMOTE_ADDR"] = real_client_ip(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""),
                                             self.networks)
        return self.get_response(request)


class HtmxLoginRedirectMiddleware:
    """A partial request whose session has ended opens the sign-in page as a whole page.

    Without this, htmx follows the redirect and swaps the sign-in form into whatever fragment asked.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "htmx", False) and response.status_code == 302:
            if response["Location"].split("?")[0] == resolve_url(settings.LOGIN_URL):
                return HttpResponseClientRedirect(response["Location"])
        return response
