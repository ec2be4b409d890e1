"""Requests per API key (settings.API_RATE_LIMIT): one key's burst uses its own bucket, never another's."""

from rest_framework.throttling import SimpleRateThrottle


class ApiKeyThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
