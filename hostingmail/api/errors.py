"""One error body for every failure: {"error": {"code": ..., "message": ..., "fields": {field: [messages]}}}.

Services raise Django's ValidationError and PermissionDenied (the panel puts them next to form fields); here they
become 400 and 403 with the same messages, per field.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler as drf_exception_handler

CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_409_CONFLICT: "conflict",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_422_UNPROCESSABLE_ENTITY: "idempotency_key_reused",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}
NON_FIELD = "non_field_errors"


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _flatten(value)]
    if isinstance(detail, (list, tuple)):
        return [m for value in detail for m in _flatten(value)]
    return [str(detail)]


def _fields(detail) -> dict:
    if not isinstance(detail, dict):
        return {}
    return {("" if key in (NON_FIELD, "__all__") else str(key)): _flatten(value) for key, value in detail.items()}


def from_django(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({key: list(messages) for key, messages in exc.message_dict.items()})
    return exceptions.ValidationError({NON_FIELD: exc.messages})


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = from_django(exc)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(" ".join(str(a) for a in exc.args) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    fields = _fields(detail) if isinstance(exc, exceptions.ValidationError) else {}
    if fields:
        message = "; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in fields.items())
        fields = {k: v for k, v in fields.items() if k}
    else:
        message = " ".join(_flatten(detail))
    code = CODES.get(response.status_code, "error")
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
    response.data = error_body(code, message, fields)
    return response


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
