"""What a mailbox does with mail once it arrives: its Sieve script (read by Dovecot from the database through
dict-sql) and the automatic replies of mailboxes and aliases."""

import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def new_data_id() -> str:
    return secrets.token_hex(16)


class SieveScript(models.Model):
    """A mailbox's own Sieve script, run by Dovecot at delivery after the global Junk script.

    Made from simple rules (`rules`, the form's) or written by hand (`mode` raw). Dovecot reads this table through
    dict-sql (Pigeonhole's dict location, hostingmail-dict-sql.conf.ext): `username` (the mailbox's address, as
    Dovecot knows it) names the row, and `data_id`, new with every change, tells Dovecot to compile it again."""

    class Mode(models.TextChoices):
        RULES = "rules", _("Simple rules")
        RAW = "raw", _("Sieve script")

    mailbox = models.OneToOneField("accounts.Mailbox", on_delete=models.CASCADE, related_name="sieve_script")
    mode = models.CharField(max_length=5, choices=Mode.choices, default=Mode.RULES)
    # [{"field": "from|to|subject", "contains": "...", "action": "fileinto|redirect|discard", "target": "..."}]
    rules = models.JSONField(default=list, blank=True)
    script = models.TextField(blank=True)
    username = models.CharField(max_length=320, unique=True)
    data_id = models.CharField(max_length=32, default=new_data_id)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"sieve script of {self.mailbox}"


class AutoReply(models.Model):
    """Vacation: an automatic reply from a mailbox or an alias (exactly one), sent by the workers through the
    outbound queue (counted against the sending limits, in the message log)."""

    mailbox = models.OneToOneField("accounts.Mailbox", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="auto_reply")
    alias = models.OneToOneField("accounts.Alias", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="auto_reply")
    # The address it answers for (A-label domain), kept here so that the MX finds it with one indexed lookup.
    address = models.CharField(max_length=320, unique=True)
    enabled = models.BooleanField(default=False)
    subject = models.CharField(max_length=200)
    body = models.TextField(max_length=10000)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    # RFC 5230 4.1: at most one reply per sender in this many days (its default is 7).
    interval_days = models.PositiveSmallIntegerField(default=7)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=models.Q(mailbox__isnull=False, alias__isnull=True)
            | models.Q(mailbox__isnull=True, alias__isnull=False), name="auto_reply_one_owner")]

    def __str__(self):
        return f"auto-reply of {self.address}"

    @property
    def owner(self):
        return self.mailbox or self.alias

    def active_on(self, day) -> bool:
        return (self.enabled and (self.starts_on is None or self.starts_on <= day)
                and (self.ends_on is None or day <= self.ends_on))


class AutoReplySent(models.Model):
    """When an auto-reply last answered a sender: the next answer to that sender waits interval_days."""

    auto_reply = models.ForeignKey(AutoReply, on_delete=models.CASCADE, related_name="sent")
    sender = models.CharField(max_length=320)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["auto_reply", "sender"], name="auto_reply_sent_once")]
