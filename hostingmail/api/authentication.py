"""`Authorization: Bearer <API key>`: the request acts as the key's user, with the key attached to it."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.services.api_keys import api_key_authenticate
from accounts.views.common import client_ip


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as “Authorization: Bearer <key>”.")
        try:
            secret = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        api_key = api_key_authenticate(secret, client_ip=client_ip(request))
        if api_key is None:
            # One answer for unknown, revoked, expired and wrong-network keys: nothing to learn from the difference.
            raise exceptions.AuthenticationFailed("Invalid API key, or not valid from this address.")
        user = api_key.user
        # audit() reads this: every write made through the key is logged as "api-key:<name>".
        user.api_key = api_key
        return user, api_key

    def authenticate_header(self, request):
        return self.keyword  # a 401, not a 403, for a missing or bad key


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key from the panel's API keys page."}
