"""Sending webhook deliveries from the outbox (run by the Celery workers: accounts.tasks).

Each request carries the event id (`X-Hostingmail-Event-Id`, the receiver's dedupe key: a worker killed after the
receiver answered sends it again once its claim expires) and `X-Hostingmail-Signature: t=<unix>,v1=<hex>`, the
HMAC-SHA256 under the endpoint's secret of "<t>.<body>"; receivers reject a stale t, so a captured request cannot
be replayed later. Requests go only to public addresses (the name is resolved once and that address is the one
connected to, so a second lookup cannot point it inside) unless WEBHOOK_ALLOW_PRIVATE is set.
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.dkim_keys import decrypt_private_key
from accounts.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger("accounts.webhooks")

USER_AGENT = "hostingmail-webhooks/1"


class WebhookRefused(Exception):
    """The URL is not one the workers may call (a private address, a bad scheme)."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (README, "Automating with the API"): the signature matches and is recent."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), f"t={timestamp},v1={fields.get('v1', '')}")


def allowed_address(address: str) -> bool:
    # As delivery decides for remote MXes (relay.delivery.routing.allowed_address), with its own setting.
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return True
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host}: {error}") from error
    addresses = [info[4][0] for info in infos]
    # Every address the name has must be public: a name with one private address is refused, whichever one
    # the connection would have used.
    if not addresses or not all(allowed_address(a) for a in addresses):
        raise WebhookRefused(f"{host} resolves to a private or loopback address")
    return addresses[0]


class _PinnedConnection(http.client.HTTPConnection):
    """A connection to an address resolved and checked beforehand; the URL's host is still the Host header."""

    def __init__(self, host, address, port, timeout, context=None):
        super().__init__(host, port, timeout=timeout)
        self._address, self._context = address, context

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        if self._context is not None:
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict) -> int:
    """POST and return the status code; OSError for a network failure, WebhookRefused for a forbidden URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("only http and https URLs")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _resolve(parts.hostname, port)
    context = ssl.create_default_context() if parts.scheme == "https" else None
    connection = _PinnedConnection(parts.hostname, address, port, settings.WEBHOOK_TIMEOUT, context)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        return response.status
    finally:
        connection.close()


def retry_delay(attempts: int) -> int:
    schedule = settings.WEBHOOK_RETRY_SCHEDULE or [60]
    return schedule[min(max(attempts, 1), len(schedule)) - 1]


def due_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(WebhookDelivery.objects.filter(
        state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now, endpoint__is_active=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])


def _claim(delivery_id: int, now: datetime) -> tuple[WebhookDelivery, datetime] | None:
    """Take a due delivery for this worker with one conditional UPDATE: of two workers, one gets it."""
    lease_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    taken = WebhookDelivery.objects.filter(
        pk=delivery_id, state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now, endpoint__is_active=True,
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(lease_until=lease_until)
    if taken != 1:
        return None
    return WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id), lease_until


def body_of(delivery: WebhookDelivery) -> bytes:
    event = delivery.event
    return json.dumps({"id": str(event.uuid), "type": event.type, "created": event.created_at.isoformat(),
                       "customer": event.customer_id, "data": event.payload},
                      separators=(",", ":"), sort_keys=True).encode()


def deliver(delivery_id: int, *, now: datetime | None = None) -> str | None:
    """One attempt at a due delivery, if this worker claims it; its new state (None: not claimed)."""
    now = now or timezone.now()
    claimed = _claim(delivery_id, now)
    if claimed is None:
        return None
    delivery, lease_until = claimed
    endpoint, body = delivery.endpoint, body_of(delivery)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-Hostingmail-Event-Id": str(delivery.event.uuid), "X-Hostingmail-Event": delivery.event.type,
               "X-Hostingmail-Signature": sign(decrypt_private_key(endpoint.secret_encrypted), body,
                                               int(now.timestamp()))}
    code, error = None, ""
    try:
        code = post(endpoint.url, body, headers)
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except WebhookRefused as refused:
        error = f"refused: {refused}"
    except (OSError, http.client.HTTPException) as failure:
        error = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
    return _record(delivery, lease_until=lease_until, code=code, error=error, now=now)


def _record(delivery: WebhookDelivery, *, lease_until: datetime, code: int | None, error: str,
            now: datetime) -> str | None:
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "last_status_code": code, "last_error": error[:500], "last_attempt_at": now,
              "lease_until": None}
    if not error:
        state = WebhookDelivery.State.DELIVERED
        fields.update(delivered_at=now)
    elif now - delivery.event.created_at >= timedelta(seconds=settings.WEBHOOK_RETRY_SECONDS):
        state = WebhookDelivery.State.FAILED
    else:
        state = WebhookDelivery.State.PENDING
        fields.update(next_attempt_at=now + timedelta(seconds=retry_delay(attempts)))
    with transaction.atomic():
        # Only the holder of the claim records (a worker whose claim expired changes nothing).
        if WebhookDelivery.objects.filter(pk=delivery.pk, lease_until=lease_until).update(state=state, **fields) != 1:
            return None
        _endpoint_result(delivery.endpoint_id, ok=not error, error=error, now=now)
    log.info("webhook %s to endpoint %s: %s%s", delivery.event.uuid, delivery.endpoint_id, state,
             f" ({error})" if error else "")
    return state


def _endpoint_result(endpoint_id: int, *, ok: bool, error: str, now: datetime) -> None:
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
    if ok:
        endpoints.filter(consecutive_failures__gt=0).update(consecutive_failures=0, failing_since=None)
        return
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
    # Sustained failure: many failures in a row, over a long enough time that one outage of the receiver is not it.
    since = now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    disabled = endpoints.filter(is_active=True, consecutive_failures__gte=settings.WEBHOOK_DISABLE_AFTER_FAILURES,
                                failing_since__lte=since).update(
        is_active=False, disabled_at=now,
        disabled_reason=f"Disabled after {settings.WEBHOOK_DISABLE_AFTER_FAILURES} or more failed deliveries in a "
                        f"row; the last: {error}"[:300])
    if disabled:
        log.warning("webhook endpoint %s disabled after sustained failure: %s", endpoint_id, error)


def deliver_many(ids: list[int], *, now: datetime | None = None) -> dict[int, str | None]:
    return {delivery_id: deliver(delivery_id, now=now) for delivery_id in ids}
