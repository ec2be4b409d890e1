"""The OpenAPI schema's conventions: every operation documents the error body for the answers it can give."""

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import OpenApiParameter

from hostingmail.api.errors import ErrorSerializer

ERRORS = (400, 401, 403, 404, 429)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Any unique string (a UUID): the same POST with the same key again makes nothing new and gets the "
                "first answer. Remembered for API_IDEMPOTENCY_HOURS.")


class AutoSchema(BaseAutoSchema):
    def get_response_serializers(self):
        base = super().get_response_serializers()
        if isinstance(base, dict) and all(isinstance(code, int) for code in base):
            responses = dict(base)
        elif self.method == "DELETE":
            responses = {204: None}
        elif self.method == "POST" and getattr(self.view, "action", None) == "create":
            responses = {201: base}
        else:
            responses = {200: base}
        for code in ERRORS:
            responses.setdefault(code, ErrorSerializer)
        if self.method == "POST":
            responses.setdefault(409, ErrorSerializer)
            responses.setdefault(422, ErrorSerializer)
        return responses

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_KEY)
        return parameters
