"""Spam settings a customer owns: its thresholds and those of its domains (within the bounds support sets), and
its allow and block lists of senders. The MX reads them (relay.inbound.spam); the panel writes them
(accounts.services.spam)."""

from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _


class SpamPolicy(models.Model):
    """One customer's spam settings, or one of its domains' (domain set): a domain's own thresholds win over its
    customer's; an empty threshold follows rspamd's own actions. The bounds are support's, on the customer's row."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="spam_policies")
    domain = models.OneToOneField("accounts.Domain", null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="spam_policy")
    # rspamd score from which a message is delivered marked as spam (filed into Junk), and refused (550 5.7.1).
    mark_score = models.FloatField(null=True, blank=True)
    reject_score = models.FloatField(null=True, blank=True)
    # Support's bounds for this customer's thresholds (empty: SPAM_SCORE_MIN / SPAM_SCORE_MAX).
    min_score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(null=True, blank=True)
    # Domain rows: a message that would be refused is held in quarantine instead.
    quarantine = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer"], condition=models.Q(domain__isnull=True),
                                               name="spam_policy_one_per_customer")]

    def __str__(self):
        return f"spam settings of {self.domain or self.customer}"


class SenderRule(models.Model):
    """A sender address or a whole domain the customer always takes (allow: never marked or refused) or never
    takes (block: 550 5.7.1)."""

    class Kind(models.TextChoices):
        ALLOW = "allow", _("Always accept")
        BLOCK = "block", _("Always refuse")

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="sender_rules")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    # An address (local@a-label) or a domain (its A-label): matches the envelope sender and the From: header.
    value = models.CharField(max_length=320)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [models.UniqueConstraint(fields=["customer", "value"], name="sender_rule_unique")]

    def __str__(self):
        # Also the audit log's stored name of the object: always in English, whatever the page's language.
        with translation.override(None):
            return f"{str(self.get_kind_display()).lower()} {self.value}"
