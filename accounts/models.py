"""People, tenancy and the mail objects they own. Writes go through accounts.services; reads through selectors."""

import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.indexes import TrigramIndex
from accounts.normalize import domain_to_unicode


class Status(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")


class SendingLimits(models.Model):
    """Rolling-window sending limits in recipients; null means "no limit of its own at this level"."""

    send_per_hour = models.PositiveIntegerField(null=True, blank=True)
    send_per_day = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        abstract = True


class Reseller(SendingLimits):
    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=300, blank=True)
    # Branding shown to its customers.
    panel_title = models.CharField(max_length=100, blank=True)
    logo = models.FileField(upload_to="reseller-logos/", blank=True)
    support_email = models.EmailField(blank=True)
    help_url = models.URLField(blank=True)
    # "#rrggbb": buttons and links (CSS variables); white text on it has a WCAG contrast ratio of at least 4.5.
    brand_color = models.CharField(max_length=7, blank=True)
    # The host name its customers open the panel at: the sign-in page there shows this brand.
    panel_host = models.CharField(max_length=253, blank=True)
    # The pool it hands out to its customers.
    max_customers = models.PositiveIntegerField(default=100)
    max_domains = models.PositiveIntegerField(default=1000)
    max_mailboxes = models.PositiveIntegerField(default=10000)
    max_storage_mb = models.PositiveBigIntegerField(default=1024 * 1024)
    max_aliases = models.PositiveIntegerField(default=100000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["panel_host"], condition=~models.Q(panel_host=""),
                                               name="reseller_panel_host_unique")]

    def __str__(self):
        return self.name


class PlanTemplate(SendingLimits):
    """A named set of customer limits a reseller reuses when it creates or changes customers."""

    reseller = models.ForeignKey(Reseller, on_delete=models.CASCADE, related_name="plan_templates")
    name = models.CharField(max_length=100)
    max_domains = models.PositiveIntegerField(default=5)
    max_mailboxes = models.PositiveIntegerField(default=50)
    max_storage_mb = models.PositiveBigIntegerField(default=10240)
    max_message_size = models.PositiveIntegerField(default=25 * 1024 * 1024)
    max_recipients = models.PositiveIntegerField(default=100)
    max_aliases = models.PositiveIntegerField(default=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["reseller", "name"], name="plan_template_name_per_reseller")]

    def __str__(self):
        return self.name


class Customer(SendingLimits):
    name = models.CharField(max_length=150, db_index=True)
    reseller = models.ForeignKey(Reseller, null=True, blank=True, on_delete=models.PROTECT, related_name="customers")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=300, blank=True)
    contact_email = models.EmailField(blank=True)
    # Plan.
    max_domains = models.PositiveIntegerField(default=5)
    max_mailboxes = models.PositiveIntegerField(default=50)
    max_storage_mb = models.PositiveBigIntegerField(default=10240)
    max_message_size = models.PositiveIntegerField(default=25 * 1024 * 1024)
    max_recipients = models.PositiveIntegerField(default=100)
    # Bumped by every change that ends a login of this customer's (a credential revoked, a mailbox disabled or its
    # password changed, a domain, the customer or its reseller suspended): the relay compares it at each MAIL with
    # the value read at AUTH, and checks the login again only when it moved.
    login_generation = models.PositiveBigIntegerField(default=0)
    max_aliases = models.PositiveIntegerField(default=100)
    # The reseller's own id for this customer (its billing system's account number); unique per reseller.
    external_id = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["reseller", "name"], name="customer_name_unique_per_reseller"),
            models.UniqueConstraint(fields=["reseller", "external_id"], condition=~models.Q(external_id=""),
                                    name="customer_external_id_unique_per_reseller"),
        ]
        # Support searches customers by any part of the name (icontains).
        indexes = [TrigramIndex(Upper("name"), name="customer_name_trgm")]

    def __str__(self):
        return self.name

    @property
    def is_active(self):
        return self.status == Status.ACTIVE


class User(AbstractUser):
    class Role(models.TextChoices):
        SUPPORT = "support", _("Support staff")
        RESELLER = "reseller", _("Reseller admin")
        CUSTOMER = "customer", _("Customer")
        MAILBOX = "mailbox", _("Mailbox owner")

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.CUSTOMER)
    reseller = models.ForeignKey(Reseller, null=True, blank=True, on_delete=models.CASCADE, related_name="admins")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="users")
    mailbox = models.OneToOneField("Mailbox", null=True, blank=True, on_delete=models.CASCADE, related_name="user")
    # The panel's language for this user, one of settings.LANGUAGES (not choices here: adding a language is a
    # settings change, not a migration); blank follows the browser (Accept-Language, or the language cookie).
    language = models.CharField(_("Language"), max_length=15, blank=True)

    @property
    def is_support(self):
        return self.role == self.Role.SUPPORT


class Domain(SendingLimits):
    class DomainStatus(models.TextChoices):
        PENDING = "pending", _("Pending verification")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    # Stored as the lower-case IDNA A-label; `unicode_name` is what people see.
    name = models.CharField(max_length=253, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="domains")
    status = models.CharField(max_length=10, choices=DomainStatus.choices, default=DomainStatus.PENDING)
    status_reason = models.CharField(max_length=300, blank=True)
    verification_token = models.CharField(max_length=64, default=secrets.token_urlsafe)
    verified_at = models.DateTimeField(null=True, blank=True)
    dkim_selector = models.CharField(max_length=63, blank=True)
    dkim_private_key = models.TextField(blank=True)
    dkim_public_key = models.TextField(blank=True)
    # {"mx": {"status": "found|missing|wrong", "expected": ..., "found": [...]}, "spf": ..., ...}
    dns_status = models.JSONField(default=dict, blank=True)
    dns_checked_at = models.DateTimeField(null=True, blank=True)
    # Support may route a sender domain through its own smart host (smtp[s]://user:pass@host:port?tls=...).
    smarthost_url = models.CharField(max_length=500, blank=True)
    max_storage_mb = models.PositiveBigIntegerField(null=True, blank=True)
    # An alias domain: mail to any address here goes to the same local part at alias_of (after this domain's
    # own mailboxes and aliases).
    alias_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="alias_domains")
    # Where mail to an address that nothing else here takes goes: one address, hosted or external; empty is off.
    catchall = models.CharField(max_length=320, blank=True)

    class DmarcRejectPolicy(models.TextChoices):
        REJECT = "reject", _("Refuse it (honour the sender's p=reject)")
        MARK = "mark", _("Deliver it, marked as spam")

    # What the MX does with a message for this domain whose sender's DMARC policy is p=reject and which fails it
    # (MX_DMARC_REJECT=false relaxes every domain to "mark").
    dmarc_reject_policy = models.CharField(max_length=6, choices=DmarcRejectPolicy.choices,
                                           default=DmarcRejectPolicy.REJECT)
    # Greylisting at the MX (relay.inbound.greylist): a first message from an unknown (client network, sender,
    # recipient) is refused for a while; off by default (delays first mail by minutes, some senders never retry).
    greylisting = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        # Support searches domains by any part of the name (contains).
        indexes = [TrigramIndex(fields=["name"], name="domain_name_trgm")]

    def __str__(self):
        return self.unicode_name

    @property
    def unicode_name(self):
        return domain_to_unicode(self.name)

    @property
    def is_verified(self):
        return self.verified_at is not None

    @property
    def can_send(self):
        return self.is_verified and self.status == self.DomainStatus.ACTIVE


class Mailbox(SendingLimits):
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="mailboxes")
    local_part = models.CharField(max_length=64)
    display_name = models.CharField(max_length=150, blank=True)
    # Dovecot-readable: "{ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$salt$hash".
    password_hash = models.CharField(max_length=255)
    quota_mb = models.PositiveIntegerField(default=1024)
    # What Dovecot reports as used (imported from its quota dict table by accounts.tasks).
    used_bytes = models.PositiveBigIntegerField(default=0)
    used_messages = models.PositiveBigIntegerField(default=0)
    usage_updated_at = models.DateTimeField(null=True, blank=True)
    smtp_enabled = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    status_reason = models.CharField(max_length=300, blank=True)
    # A copy of every message to these addresses (hosted or external); without keep_copy only the copies.
    forward_to = models.JSONField(default=list, blank=True)
    forward_keep_copy = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain__name", "local_part"]
        constraints = [models.UniqueConstraint(fields=["domain", "local_part"], name="mailbox_unique_address")]
        # Support finds a mailbox by any part of its local part ("anna" finds joanna@…).
        indexes = [TrigramIndex(Upper("local_part"), name="mailbox_local_part_trgm")]

    def __str__(self):
        return self.address

    @property
    def address(self):
        return f"{self.local_part}@{self.domain.name}"

    @property
    def unicode_address(self):
        return f"{self.local_part}@{self.domain.unicode_name}"

    @property
    def is_full(self) -> bool:
        """As the MX sees it at RCPT (552 5.2.2 Mailbox full)."""
        return self.used_bytes >= self.quota_mb * 1024 * 1024


class Alias(models.Model):
    """local_part@domain delivered to one or more addresses: hosted ones (mailboxes, other aliases) or external."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="aliases")
    local_part = models.CharField(max_length=64)
    # Addresses as stored (local part as given, domain as its lower-case A-label), resolved at every RCPT.
    destinations = models.JSONField(default=list)
    is_enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain__name", "local_part"]
        constraints = [models.UniqueConstraint(fields=["domain", "local_part"], name="alias_unique_address")]
        verbose_name_plural = _("aliases")
        # Support finds an alias by any part of its local part, as a mailbox.
        indexes = [TrigramIndex(Upper("local_part"), name="alias_local_part_trgm")]

    def __str__(self):
        return self.address

    @property
    def customer(self):
        return self.domain.customer

    @property
    def address(self):
        return f"{self.local_part}@{self.domain.name}"

    @property
    def unicode_address(self):
        return f"{self.local_part}@{self.domain.unicode_name}"


class SmtpCredential(SendingLimits):
    """An app password: scoped to one mailbox's address, or to every address of one domain."""

    username = models.CharField(max_length=100, unique=True)
    # "{HMAC-SHA256}<key id>$<hex>" (accounts.hashing); one made before that scheme, "{ARGON2ID}...", is converted
    # at the credential's next login.
    secret_hash = models.CharField(max_length=255)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="credentials")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="credentials")
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.CASCADE, related_name="credentials")
    description = models.CharField(max_length=200, blank=True)
    # Newline-separated CIDRs; empty means any address.
    allowed_networks = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    status_reason = models.CharField(max_length=300, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at"], name="credential_created_idx")]

    def __str__(self):
        return self.username

    @property
    def scope_label(self):
        return self.mailbox.unicode_address if self.mailbox_id else f"any address @{self.domain.unicode_name}"


class HoldRequest(models.Model):
    """"Hold what this sender queued": written with the revocation or suspension that asks for it, carried out by the
    relay's workers (at once when told, else at their next sweep)."""

    scope = models.CharField(max_length=16)  # credential, mailbox, domain, customer, reseller
    object_id = models.BigIntegerField()
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["applied_at"], name="holdrequest_pending")]


class RouteGeneration(models.Model):
    """One row: bumped in the same transaction by every change to where mail for an address goes (a mailbox, domain,
    customer or reseller suspended or deleted, an alias, catch-all, alias domain or forward changed). Each MX process
    reads it once per SMTP transaction and forgets the recipients it remembered when it moved, so such a change is
    taken at the next RCPT of every MX process instead of after MX_RECIPIENT_CACHE_SECONDS."""

    value = models.PositiveBigIntegerField(default=0)


class ApiKey(models.Model):
    """A key for the REST API. It acts as its user (a support, reseller admin or customer user): it sees and
    changes what that user may in the panel, through the same selectors and services, or less (read-only).

    The secret is random (>= 128 bits), so it is stored as a keyed fast hash (HMAC-SHA-256 under
    settings.API_KEY_HASH_SECRET), not a slow one; `prefix` finds the row, the hash is compared in constant time.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    read_only = models.BooleanField(default=False)
    # Newline-separated CIDRs; empty means any address.
    allowed_networks = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="api_key_name_unique_per_user")]

    def __str__(self):
        return self.name

    @property
    def is_live(self):
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class ApiIdempotencyKey(models.Model):
    """A POST made with an Idempotency-Key header and the answer it got: the same key again gets the same answer
    and makes nothing new. The unique constraint makes concurrent duplicates wait for the first and replay it."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # What was asked (method, path, body digest): the same key for a different request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="api_idempotency_key_unique")]


class LoginLink(models.Model):
    """A one-time sign-in link for a panel user (a billing system's single sign-on): valid for minutes, used once.

    Only the token's keyed hash is stored (as for API keys); `used_at` is set by the one request that signs in.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


class AuditEntry(models.Model):
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The API key the actor acted through, if any (actor_label then reads "api-key:<name>").
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Kept as text too, so the log still reads after a user is deleted; "system" for tasks and commands.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=40, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reseller = models.ForeignKey(Reseller, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("audit entries")
        # The audit log pages newest first, also when many entries share a timestamp (bulk changes).
        indexes = [models.Index(fields=["-created_at", "-id"], name="audit_newest_first")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"


class SendUsage(models.Model):
    """Recipients accepted per scope and minute; the rolling hour/day sums are taken over these buckets."""

    class Scope(models.TextChoices):
        CREDENTIAL = "credential"
        MAILBOX = "mailbox"
        DOMAIN = "domain"
        CUSTOMER = "customer"
        RESELLER = "reseller"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    scope_id = models.BigIntegerField()
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "scope_id", "minute"], name="send_usage_bucket")]


class SendUsageHourly(models.Model):
    """Recipients accepted per customer or reseller and hour, kept for the sending charts after the minute
    buckets above are purged (they only need the rolling day). Filled by accounts.sending_history."""

    scope = models.CharField(max_length=10, choices=SendUsage.Scope.choices)
    scope_id = models.BigIntegerField()
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "scope_id", "hour"], name="send_usage_hour")]


class DovecotQuota(models.Model):
    """Dovecot's quota dict (driver sql) writes current usage here; a periodic task copies it to Mailbox."""

    username = models.CharField(max_length=320, primary_key=True)
    bytes = models.BigIntegerField(default=0)
    messages = models.BigIntegerField(default=0)

    class Meta:
        db_table = "dovecot_quota"


class PanelSession(models.Model):
    """A signed-in browser session, listed on the user's security page and revocable from there."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="panel_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at"]


class PanelLoginFailure(models.Model):
    """A failed panel sign-in; counted per username and per client address to throttle guessing."""

    username = models.CharField(max_length=150, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


# The webhook outbox lives in its own module; importing it here registers its models with the app.
from accounts.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookEventType  # noqa: E402,F401
from accounts.spam_models import SenderRule, SpamPolicy  # noqa: E402,F401
from accounts.filter_models import AutoReply, AutoReplySent, SieveScript  # noqa: E402,F401
