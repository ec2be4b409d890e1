"""The OpenAPI schema's conventions: every operation documents the error body for the answers it can give, and
every POST its Idempotency-Key header."""

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import OpenApiParameter

from hostingmail.api.errors import ErrorSerializer

ERRORS = ("400", "401", "403", "404", "429")
POST_ERRORS = ("409", "422")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Any unique string (a UUID): the same POST with the same key again makes nothing new and gets the "
                "first answer. Remembered for API_IDEMPOTENCY_HOURS.")


class AutoSchema(BaseAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in ERRORS + (POST_ERRORS if self.method == "POST" else ()):
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
        return responses

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_KEY)
        return parameters
