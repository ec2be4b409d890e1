"""Webhooks: endpoints a customer or reseller registers, and the durable outbox that feeds them.

An event row and one delivery row per subscribed endpoint are written in the transaction of the change that causes
the event, so a change that rolls back sends nothing and a committed one is sent even if the broker or every
worker was down at the time (the beat sweep finds due deliveries in the table).
"""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WebhookEventType(models.TextChoices):
    MESSAGE_DELIVERED = "message.delivered", _("Message delivered")
    MESSAGE_DEFERRED = "message.deferred", _("Message deferred")
    MESSAGE_BOUNCED = "message.bounced", _("Message bounced")
    DOMAIN_DNS_CHANGED = "domain.dns_changed", _("Domain DNS status changed")
    SENDING_LIMIT_REACHED = "sending.limit_reached", _("Sending limit reached")
    CUSTOMER_SUSPENDED = "customer.suspended", _("Customer suspended")
    CUSTOMER_RESTORED = "customer.restored", _("Customer restored")
    DOMAIN_SUSPENDED = "domain.suspended", _("Domain suspended")
    DOMAIN_RESTORED = "domain.restored", _("Domain restored")
    MAILBOX_SUSPENDED = "mailbox.suspended", _("Mailbox suspended")
    MAILBOX_RESTORED = "mailbox.restored", _("Mailbox restored")
    CREDENTIAL_SUSPENDED = "credential.suspended", _("SMTP credential suspended")
    CREDENTIAL_RESTORED = "credential.restored", _("SMTP credential restored")


class WebhookEndpoint(models.Model):
    # Exactly one owner: a customer's endpoint hears that customer's events, a reseller's those of all its customers.
    customer = models.ForeignKey("accounts.Customer", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="webhook_endpoints")
    reseller = models.ForeignKey("accounts.Reseller", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    # Event type names; empty means every event.
    events = models.JSONField(default=list, blank=True)
    # The signing secret, encrypted at rest like DKIM keys (it must be read back to sign).
    secret_encrypted = models.TextField()
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(
            condition=models.Q(customer__isnull=False, reseller__isnull=True)
            | models.Q(customer__isnull=True, reseller__isnull=False), name="webhook_endpoint_one_owner")]

    def __str__(self):
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


class WebhookEvent(models.Model):
    # The id receivers dedupe by (X-Hostingmail-Event-Id).
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    customer = models.ForeignKey("accounts.Customer", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    payload = models.JSONField(default=dict)
    # Events that would repeat (a limit refused again and again) are written once per key.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.type} {self.uuid}"


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")  # retries given up, or its endpoint disabled

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker's claim: another worker takes the row only after it expires (a worker killed mid-request).
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("webhook deliveries")
        # Exactly once per event per endpoint.
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self):
        return f"{self.event} → {self.endpoint}"
