"""Requests per API key (settings.API_RATE_LIMIT): one key's burst uses its own bucket, never another's."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ApiKeyThrottle(SimpleRateThrottle):
    """Over the rate DRF answers 429 with Retry-After (the seconds until the oldest request leaves the window).
    The counts live in Django's cache: per process by default, shared when CACHES names Redis."""

    scope = "api_key"

    def get_rate(self):
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view):
        if request.auth is None:
            return self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
