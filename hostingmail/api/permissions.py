"""A key may read; only a read-write key may write. What it may read or write is the panel's rule, applied by the
selectors and services the views call. (Without a key DRF answers 401: no authenticator succeeded.)"""

from rest_framework import permissions


class ApiKeyPermission(permissions.BasePermission):
    message = "This API key is read-only."

    def has_permission(self, request, view):
        if request.auth is None:
            return False
        return request.method in permissions.SAFE_METHODS or not request.auth.read_only
