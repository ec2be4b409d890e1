"""Requests per API key (settings.API_RATE_LIMIT): one key's burst uses its own budget, never another's."""

import logging

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class ApiKeyThrottle(SimpleRateThrottle):
    """A counter per key and window of the rate's period, in Django's cache (settings.CACHES, CACHE_URL): per
    process by default, one budget across every API process when they share a Redis.

    The count is the cache's atomic increment (Redis INCR), not DRF's read-modify-write of a request history,
    which two processes answering the same key at once would both read before either writes and so lose a request
    each. The cost is a fixed window: a key may spend its budget at the end of one window and again at the start of
    the next. Over the rate DRF answers 429 with Retry-After, the seconds until the window ends. A cache that is
    down lets requests through: rate limiting must not take the API down with it.
    """

    scope = "api_key"

    def get_rate(self):
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view):
        if request.auth is None:
            return self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        key = f"{self.get_cache_key(request, view)}:{window}"
        try:
            count = self._increment(key)
        except Exception:  # noqa: BLE001 — the cache server is down or unreachable
            logger.warning("API rate limit not applied: the cache is unavailable", exc_info=True)
            return True
        return count <= self.num_requests

    def _increment(self, key: str) -> int:
        timeout = self.duration + 1
        self.cache.add(key, 0, timeout=timeout)
        try:
            return self.cache.incr(key)
        except ValueError:  # expired between add and incr
            self.cache.add(key, 1, timeout=timeout)
            return 1

    def wait(self):
        return max(self.window_end - self.now, 1)
