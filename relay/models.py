"""The durable queue and the message log. The database is the truth; the broker only says "look now"."""

import secrets

from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from accounts.indexes import TrigramIndex
from accounts.models import Customer, Domain, Mailbox, SmtpCredential, User


def _where_set(field: str, *, name: str) -> list[models.Index]:
    """An index of a foreign key over the rows where it is set. Most messages are no bounce, and an outbound
    recipient has no mailbox and no forwarder: a full index took an entry for each of those rows at every insert
    and no lookup ever reads them (an equality on the key implies it is set, which PostgreSQL and SQLite both
    see, so the on_delete lookups and the filters by mailbox still use it)."""
    return [models.Index(fields=[field], condition=models.Q(**{f"{field}__isnull": False}), name=name)]


def new_queue_id():
    return secrets.token_hex(6).upper()


class QueuedMessage(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        DEFERRED = "deferred", _("Deferred")
        DELIVERED = "delivered", _("Delivered")
        BOUNCED = "bounced", _("Bounced")
        PARTIAL = "partial", _("Partly bounced")
        HELD = "held", _("Held")
        CANCELLED = "cancelled", _("Cancelled")
        # Inbound, held by the spam check instead of refused: kept until released or deleted (relay.quarantine).
        QUARANTINED = "quarantine", _("Quarantined")

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", _("Outbound")
        INBOUND = "inbound", _("Inbound")

    # Unique through Meta.constraints: a unique=True CharField also gets a second index for LIKE 'x%' on
    # PostgreSQL, which no query of a queue id uses and every insert wrote.
    queue_id = models.CharField(max_length=20, default=new_queue_id)
    # Outbound: submitted by a customer's client on 587/465. Inbound: received by the MX for hosted mailboxes.
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.OUTBOUND)
    # Inbound: the sender passed SPF or aligned DKIM, so a failure after acceptance may be reported to it (a DSN
    # to an unauthenticated sender would be backscatter).
    sender_authenticated = models.BooleanField(default=False)
    # Indexed by Meta.indexes' (customer, -created_at), which serves every lookup by customer alone too.
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
                                 db_index=False)
    # Indexed where set (Meta.indexes): an inbound message has no credential, mailbox or (unless forwarded) domain,
    # and a mailbox's own login no credential.
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
                               db_index=False)
    credential = models.ForeignKey(SmtpCredential, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="messages", db_index=False)
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
                                db_index=False)
    # Empty string is the null sender (bounces); a message from it is never bounced.
    mail_from = models.CharField(max_length=320, blank=True)
    header_from = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    size = models.PositiveIntegerField(default=0)
    # The exact bytes that will be delivered; emptied by retention purge while the log row stays.
    content = models.BinaryField(null=True)
    # Indexed with next_attempt_at below (the queue's due scan, a state filter): every index on a column that a
    # delivery changes costs PostgreSQL a new entry in each of the table's indexes on each change.
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    is_bounce = models.BooleanField(default=False)
    bounce_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="bounces",
                                  db_index=False)  # indexed where set: see Meta.indexes
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker's claim: other workers skip the message until the lease runs out.
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    # Why the message is held or was cancelled, for the message log.
    state_reason = models.CharField(max_length=300, blank=True)
    dkim_signed = models.BooleanField(default=False)
    tls_version = models.CharField(max_length=20, blank=True)
    # Inbound: our own Authentication-Results (RFC 8601) and rspamd's verdict, for the message's detail page.
    auth_results = models.TextField(blank=True)
    spam_score = models.FloatField(null=True, blank=True)
    spam_action = models.CharField(max_length=20, blank=True)  # rspamd's action, or "not scanned"
    spam_symbols = models.JSONField(default=dict, blank=True)  # {symbol: score}
    digest_sent_at = models.DateTimeField(null=True, blank=True)  # quarantined: listed in its mailboxes' digest
    purged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"]), models.Index(fields=["customer", "-created_at"]),
                   # The message log's sender search is a case-insensitive substring match.
                   TrigramIndex(Upper("mail_from"), name="msg_mail_from_trgm"),
                   TrigramIndex(Upper("header_from"), name="msg_header_from_trgm"),
                   *_where_set("domain", name="msg_domain_set"), *_where_set("credential", name="msg_credential_set"),
                   *_where_set("mailbox", name="msg_mailbox_set"), *_where_set("bounce_of", name="msg_bounce_of_set")]
        constraints = [models.UniqueConstraint(fields=["queue_id"], name="msg_queue_id_unique")]

    def __str__(self):
        return self.queue_id

    @property
    def spam_symbol_list(self) -> list[tuple[str, float]]:
        """rspamd's symbols, those that weighed most first."""
        return sorted((self.spam_symbols or {}).items(), key=lambda item: (-abs(item[1]), item[0]))


class Recipient(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        DEFERRED = "deferred", _("Deferred")
        DELIVERED = "delivered", _("Delivered")
        BOUNCED = "bounced", _("Bounced")
        CANCELLED = "cancelled", _("Cancelled")

    message = models.ForeignKey(QueuedMessage, on_delete=models.CASCADE, related_name="recipients")
    # Searched by substring only (the trigram index below); a btree on it (two on PostgreSQL, one for LIKE 'x%')
    # served no query and cost two entries a recipient.
    address = models.CharField(max_length=320)
    # Set for local delivery (a hosted mailbox, over LMTP to Dovecot); empty for a remote address.
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                db_index=False)
    # An inbound message's external recipient: the hosted domain whose alias, catch-all or mailbox forwards to it
    # (the copy's SRS address and ARC seal), and the mailbox for a mailbox's forward copy (whose limits count it).
    forward_domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                       db_index=False)
    forward_mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                        db_index=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    last_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_status = models.CharField(max_length=12, blank=True)  # enhanced status, e.g. 5.1.1
    last_reply = models.TextField(blank=True)
    remote_host = models.CharField(max_length=255, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        # The message log's recipient search is a case-insensitive substring match.
        indexes = [TrigramIndex(Upper("address"), name="rcpt_address_trgm"),
                   *_where_set("mailbox", name="rcpt_mailbox_set"),
                   *_where_set("forward_domain", name="rcpt_forward_domain_set"),
                   *_where_set("forward_mailbox", name="rcpt_forward_mailbox_set")]

    def __str__(self):
        return self.address


class DeliveryAttempt(models.Model):
    message = models.ForeignKey(QueuedMessage, on_delete=models.CASCADE, related_name="delivery_attempts")
    recipient = models.ForeignKey(Recipient, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts")
    started_at = models.DateTimeField(default=timezone.now)
    remote_host = models.CharField(max_length=255, blank=True)
    remote_ip = models.CharField(max_length=45, blank=True)
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    reply = models.TextField(blank=True)
    outcome = models.CharField(max_length=10, choices=Recipient.State.choices)

    class Meta:
        ordering = ["started_at", "id"]


class AuthFailure(models.Model):
    """One failed SMTP AUTH; counted in a window per client address and per username by every relay process."""

    client_ip = models.GenericIPAddressField(db_index=True)
    username = models.CharField(max_length=320, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


class VerifiedLogin(models.Model):
    """A mailbox password that verified against the mailbox's stored hash: the slow hash is not run again for it,
    by any relay process, before or after a restart (relay.submission.auth).

    `mac` is HMAC-SHA-256 under settings.RELAY_LOGIN_CACHE_SECRET (kept outside the database) of the stored hash
    and the password: without that key it tells nothing about the password, and a new password (a new stored
    hash, with a new salt) never matches it. Whether the mailbox may log in is read from its own row at every AUTH.
    """

    mailbox = models.OneToOneField(Mailbox, primary_key=True, on_delete=models.CASCADE, related_name="+")
    mac = models.CharField(max_length=64)
    verified_at = models.DateTimeField(default=timezone.now)


class AuthLockout(models.Model):
    class Kind(models.TextChoices):
        ADDRESS = "address", _("Client address")
        USERNAME = "username", _("Username")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=320)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="lockouts")
    failures = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "value", "locked_until"])]

    def __str__(self):
        # Also the audit log's stored name of the object: always in English, whatever the page's language.
        with translation.override(None):
            return f"{str(self.get_kind_display()).lower()} {self.value}"


class GreylistEntry(models.Model):
    """A (client network, sender, recipient) triplet the MX has seen (relay.inbound.greylist): refused with 451
    until `pass_after`, then let through, and remembered until `expires_at` (renewed by each message)."""

    triplet = models.CharField(max_length=64, unique=True)  # SHA-256 of network, sender, recipient
    first_seen = models.DateTimeField(default=timezone.now)
    pass_after = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    passed = models.BooleanField(default=False)


class AutoReplyDue(models.Model):
    """An inbound message one of whose recipients has an automatic reply on: written in the MX's transaction, so
    the worker that delivers the message answers it (relay.delivery.autoreply) even if a broker message is lost."""

    message = models.ForeignKey(QueuedMessage, on_delete=models.CASCADE, related_name="auto_replies_due")
    auto_reply = models.ForeignKey("accounts.AutoReply", on_delete=models.CASCADE, related_name="+")
