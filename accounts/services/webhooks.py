"""Webhook endpoints (registered by customers and resellers) and the events written to their outbox.

Events are recorded by the service whose change causes them, inside its transaction (`event_record`): the row is
committed with the change or not at all. The workers send them (accounts.webhook_sender) and the beat sweep finds
whatever a lost notice missed.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.dkim_keys import encrypt_private_key
from accounts.models import (
    Customer, Reseller, User, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookEventType,
)
from accounts.services.audit_log import audit, snapshot
from accounts.services.workers import notify_after_commit

DELIVER_TASK = "accounts.tasks.deliver_webhooks"
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS_PER_OWNER = 20


@dataclass(frozen=True)
class NewWebhookEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once; the stored copy is encrypted and only the workers read it


def _owner_for(actor: User | None, customer: Customer | None, reseller: Reseller | None) -> dict:
    """Whose endpoint this is: a customer user's own customer, a reseller admin's reseller or one of its customers,
    anyone's for support and commands (actor None)."""
    if customer is not None and reseller is not None:
        raise ValidationError({"customer": _("Give a customer or a reseller, not both.")})
    if actor is None or actor.is_support:
        if customer is None and reseller is None:
            raise ValidationError({"customer": _("Give the customer or reseller the endpoint is for.")})
        return {"customer": customer} if customer is not None else {"reseller": reseller}
    if actor.role == User.Role.RESELLER and actor.reseller_id:
        if reseller is not None and reseller.pk != actor.reseller_id:
            raise PermissionDenied("Not your reseller.")
        if customer is not None:
            if customer.reseller_id != actor.reseller_id:
                raise PermissionDenied("Not your customer.")
            return {"customer": customer}
        return {"reseller_id": actor.reseller_id}
    if actor.role == User.Role.CUSTOMER and actor.customer_id:
        if (customer is not None and customer.pk != actor.customer_id) or reseller is not None:
            raise PermissionDenied("A customer registers endpoints for itself.")
        return {"customer_id": actor.customer_id}
    raise PermissionDenied("Only customers, resellers and support register webhooks.")


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError({"url": _("Enter an http:// or https:// URL.")})
    if parts.username or parts.password:
        raise ValidationError({"url": _("Put no credentials in the URL: verify the signature instead.")})
    if len(url) > 500:
        raise ValidationError({"url": _("Use at most 500 characters.")})
    return url


def _clean_events(events) -> list[str]:
    events = list(dict.fromkeys(events or []))
    unknown = [e for e in events if e not in WebhookEventType.values]
    if unknown:
        types = ", ".join(map(str, unknown))
        raise ValidationError({"events": _("Unknown event types: %(types)s.") % {"types": types}})
    return events


def webhook_endpoint_create(*, actor: User | None, url: str, events: list[str] | None = None,
                            customer: Customer | None = None, reseller: Reseller | None = None,
                            description: str = "", client_ip: str | None = None) -> NewWebhookEndpoint:
    """An endpoint receiving `events` (all when empty) of the customer, or of every customer of the reseller."""
    owner = _owner_for(actor, customer, reseller)
    url, events = _clean_url(url), _clean_events(events)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(**owner).count() >= MAX_ENDPOINTS_PER_OWNER:
            raise ValidationError({"url": _("At most %(count)d endpoints each.") % {"count": MAX_ENDPOINTS_PER_OWNER}})
        endpoint = WebhookEndpoint.objects.create(url=url, events=events, description=(description or "")[:200],
                                                  secret_encrypted=encrypt_private_key(secret), **owner)
        audit(actor=actor, action="webhook.create", obj=endpoint.customer or endpoint.reseller,
              after=snapshot(endpoint), client_ip=client_ip)
    return NewWebhookEndpoint(endpoint=endpoint, secret=secret)


def webhook_endpoint_delete(*, actor: User | None, endpoint: WebhookEndpoint, client_ip: str | None = None) -> None:
    with transaction.atomic():
        before = snapshot(endpoint)
        owner = endpoint.customer or endpoint.reseller
        endpoint.delete()
        audit(actor=actor, action="webhook.delete", obj=owner, before=before, client_ip=client_ip)


def webhook_endpoint_enable(*, actor: User | None, endpoint: WebhookEndpoint,
                            client_ip: str | None = None) -> WebhookEndpoint:
    """Switch an endpoint that was disabled after failing back on; what it missed is sent again."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = snapshot(endpoint)
        endpoint.is_active, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
        endpoint.consecutive_failures, endpoint.failing_since = 0, None
        endpoint.save(update_fields=["is_active", "disabled_reason", "disabled_at", "consecutive_failures",
                                     "failing_since"])
        audit(actor=actor, action="webhook.enable", obj=endpoint.customer or endpoint.reseller, before=before,
              after=snapshot(endpoint), client_ip=client_ip)
        ids = list(endpoint.deliveries.filter(state=WebhookDelivery.State.PENDING).values_list("pk", flat=True))
        if ids:
            notify_after_commit(DELIVER_TASK, args=[ids])
    return endpoint


def webhook_redeliver(*, actor: User | None, delivery: WebhookDelivery,
                      client_ip: str | None = None) -> WebhookDelivery:
    """Send a delivery again now, whatever became of it (the receiver dedupes by the event id)."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint", "event").get(pk=delivery.pk)
        delivery.state, delivery.next_attempt_at, delivery.lease_until = \
            WebhookDelivery.State.PENDING, timezone.now(), None
        delivery.save(update_fields=["state", "next_attempt_at", "lease_until"])
        endpoint = delivery.endpoint
        audit(actor=actor, action="webhook.redeliver", obj=endpoint.customer or endpoint.reseller,
              after={"endpoint": endpoint.pk, "event": str(delivery.event.uuid)}, client_ip=client_ip)
        notify_after_commit(DELIVER_TASK, args=[[delivery.pk]])
    return delivery


@dataclass(frozen=True)
class Event:
    type: str
    customer_id: int | None
    payload: dict
    dedupe_key: str | None = None


def _listeners(customer_ids: set[int]) -> dict[int, list[WebhookEndpoint]]:
    """Active endpoints hearing each customer's events: its own and its reseller's; only customers that have some.
    One query when none has (most of the outcomes a delivery worker records)."""
    if not customer_ids:
        return {}
    heard = WebhookEndpoint.objects.filter(is_active=True).filter(
        Q(customer_id=OuterRef("pk")) | Q(reseller_id=OuterRef("reseller_id")))
    resellers = {pk: reseller_id for pk, reseller_id, has_endpoints in Customer.objects.filter(pk__in=customer_ids)
                 .annotate(has_endpoints=Exists(heard)).values_list("pk", "reseller_id", "has_endpoints")
                 if has_endpoints}
    if not resellers:
        return {}
    customer_ids = set(resellers)
    endpoints = list(WebhookEndpoint.objects.filter(is_active=True).filter(
        Q(customer_id__in=customer_ids) | Q(reseller_id__in={r for r in resellers.values() if r})))
    return {customer_id: [e for e in endpoints if e.customer_id == customer_id
                          or (e.reseller_id is not None and e.reseller_id == resellers.get(customer_id))]
            for customer_id in customer_ids}


def events_record(events: list[Event], *, now=None) -> list[WebhookEvent]:
    """Write events and one delivery per endpoint that wants each, in the caller's transaction (the change that
    causes them). Events no endpoint wants are not written at all: a customer without webhooks costs one query."""
    if not events:
        return []
    now = now or timezone.now()
    listeners = _listeners({e.customer_id for e in events if e.customer_id is not None})
    if not listeners:  # nothing to write: not even a savepoint's two round trips
        return []
    written, deliveries = [], []
    with transaction.atomic():
        for event in events:
            endpoints = [e for e in listeners.get(event.customer_id, []) if e.wants(event.type)]
            if not endpoints:
                continue
            row = WebhookEvent(type=event.type, customer_id=event.customer_id, dedupe_key=event.dedupe_key,
                               payload=event.payload, created_at=now)
            if event.dedupe_key is not None:
                try:
                    with transaction.atomic():
                        row.save()
                except IntegrityError:  # written already (by another process): once is the point
                    continue
            else:
                row.save()
            written.append(row)
            deliveries += [WebhookDelivery(event=row, endpoint=e, next_attempt_at=now, created_at=now)
                           for e in endpoints]
        if deliveries:
            WebhookDelivery.objects.bulk_create(deliveries)
            ids = list(WebhookDelivery.objects.filter(event__in=written).values_list("pk", flat=True))
            notify_after_commit(DELIVER_TASK, args=[ids])
    return written


def event_record(*, type: str, customer_id: int | None, payload: dict, dedupe_key: str | None = None,
                 now=None) -> WebhookEvent | None:
    written = events_record([Event(type, customer_id, payload, dedupe_key)], now=now)
    return written[0] if written else None


def webhooks_purge_old(*, now=None) -> dict[str, int]:
    """Deliveries delivered or failed more than WEBHOOK_RETENTION_DAYS ago, and events that old with no delivery
    left (pending ones stay, with their event, whatever their age)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    deliveries, _ = WebhookDelivery.objects.filter(
        state__in=(WebhookDelivery.State.DELIVERED, WebhookDelivery.State.FAILED), created_at__lt=cutoff).delete()
    events, _ = WebhookEvent.objects.filter(created_at__lt=cutoff, deliveries__isnull=True).delete()
    return {"webhook_deliveries": deliveries, "webhook_events": events}
