"""`Idempotency-Key` on POST: a billing system that retries a create after a timeout makes one object, not two.

The key is stored per API key with the answer, in the same transaction as the change it answered. Two requests
with the same key at once: the second one's insert waits on the unique constraint until the first commits, then
fails, and the second replays the first's answer. An answer of 5xx is not kept (the change was rolled back), so a
retry then runs again. The answer is kept encrypted: a credential's or key's secret is in it, and a database dump
must not hold one in clear.
"""

import base64
import hashlib
import json
from datetime import timedelta
from functools import wraps

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from accounts.models import ApiIdempotencyKey
from hostingmail.api.errors import error_body

HEADER = "Idempotency-Key"
MAX_LENGTH = 255


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"hostingmail api idempotency\0" + settings.API_KEY_HASH_SECRET.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _seal(data) -> dict:
    return {"sealed": _fernet().encrypt(json.dumps(data, default=str).encode()).decode("ascii")}


def _open(stored: dict):
    try:
        return json.loads(_fernet().decrypt(stored["sealed"].encode("ascii")))
    except (InvalidToken, KeyError, TypeError, ValueError):
        return None


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str) if request.data else ""
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: ApiIdempotencyKey, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        return Response(error_body("idempotency_key_reused",
                                   "This Idempotency-Key was used for a different request."), status=422)
    body = _open(record.body)
    if body is None:
        return Response(error_body("conflict", "This Idempotency-Key's answer can no longer be read (the API key "
                                   "secret changed); use a new key."), status=409)
    response = Response(body or None, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def _fresh(api_key, key: str):
    since = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    ApiIdempotencyKey.objects.filter(api_key=api_key, key=key, created_at__lt=since).delete()
    return ApiIdempotencyKey.objects.filter(api_key=api_key, key=key).first()


def idempotent(handler):
    """Wraps a view's POST handler (after authentication, permission and throttling have passed)."""

    @wraps(handler)
    def wrapped(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key or request.auth is None:
            return handler(view, request, *args, **kwargs)
        if len(key) > MAX_LENGTH:
            return Response(error_body("invalid", f"The Idempotency-Key may be at most {MAX_LENGTH} characters.",
                                       {HEADER: ["Too long."]}), status=400)
        fingerprint = _fingerprint(request)
        existing = _fresh(request.auth, key)
        if existing is not None:
            return _replay(existing, fingerprint)
        try:
            with transaction.atomic():
                record = ApiIdempotencyKey.objects.create(api_key=request.auth, key=key, fingerprint=fingerprint,
                                                          status_code=0)
                try:
                    response = handler(view, request, *args, **kwargs)
                except Exception as exc:  # noqa: BLE001 — answered here so that the answer can be kept
                    response = view.handle_exception(exc)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
                    return response
                record.status_code = response.status_code
                record.body = _seal(response.data if response.data is not None else {})
                record.save(update_fields=["status_code", "body"])
                return response
        except IntegrityError:
            # Another request with this key committed first (or is the same request, retried concurrently).
            existing = ApiIdempotencyKey.objects.filter(api_key=request.auth, key=key).first()
            if existing is None:
                raise
            return _replay(existing, fingerprint)

    return wrapped
