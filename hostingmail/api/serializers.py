"""What the API reads and writes. Output serializers read model fields; input serializers only parse — the
services validate the business rules (plan, pool, ownership) and their errors come back per field."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import (
    Alias, Customer, Domain, Mailbox, SmtpCredential, User, WebhookDelivery, WebhookEndpoint, WebhookEventType,
)
from accounts.services.limits import PLAN_FIELDS
from relay.models import DeliveryAttempt, QueuedMessage, Recipient

# --- customers -----------------------------------------------------------------------------------------------


class CustomerSerializer(serializers.ModelSerializer):
    contact_email = serializers.CharField(read_only=True, help_text="An e-mail address, or empty.")

    class Meta:
        model = Customer
        fields = ["id", "name", "external_id", "reseller", "status", "status_reason", "contact_email",
                  *PLAN_FIELDS, "created_at"]
        read_only_fields = fields


# The plan's fields, optional: left out, a new customer gets the default plan and an update leaves them as they are.
PlanFields = type("PlanFields", (serializers.Serializer,), {
    field: serializers.IntegerField(min_value=0, max_value=2**63 - 1, required=False,
                                    allow_null=field in ("send_per_hour", "send_per_day"))
    for field in PLAN_FIELDS})


class CustomerCreateSerializer(PlanFields):
    name = serializers.CharField(max_length=150)
    external_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    username = serializers.CharField(max_length=150, help_text="The customer's first panel user.")
    password = serializers.CharField(write_only=True, max_length=128)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class CustomerUpdateSerializer(PlanFields):
    name = serializers.CharField(max_length=150, required=False)
    external_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="",
                                   help_text="Support staff give a reason for a plan change.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class LoginLinkCreateSerializer(serializers.Serializer):
    user = serializers.IntegerField(help_text="One of the customer's panel users (GET /users/?customer=).")


class LoginLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Send the user's browser here: it signs them in once. Shown once.")
    expires_at = serializers.DateTimeField()
    user = serializers.IntegerField()
    username = serializers.CharField()


# --- customers' panel users ----------------------------------------------------------------------------------


class PanelUserSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="An e-mail address, or empty.")
    language = serializers.CharField(read_only=True, help_text="The panel language the user chose (a language code "
                                                               "such as \"de\"), or empty: as their browser says.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "customer", "is_active", "last_login", "date_joined", "language"]
        read_only_fields = fields


class PanelUserCreateSerializer(serializers.Serializer):
    customer = serializers.IntegerField(required=False, help_text="Required unless the key is a customer's.")
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, max_length=128)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class UserPasswordSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, max_length=128)


class UsedLimitSerializer(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField()


class CustomerUsageSerializer(serializers.Serializer):
    domains = UsedLimitSerializer()
    mailboxes = UsedLimitSerializer()
    storage_mb = UsedLimitSerializer(help_text="Storage allocated to mailboxes (their quotas) and the plan's total.")
    storage_used_bytes = serializers.IntegerField(help_text="What the mailboxes store, as Dovecot last reported.")
    sent_last_24h = serializers.IntegerField(help_text="Recipients accepted for sending.")
    sent_last_30d = serializers.IntegerField()
    bounced_last_30d = serializers.IntegerField(help_text="Recipients of its mail that bounced.")


# --- domains -------------------------------------------------------------------------------------------------


class DnsRecordSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    short_name = serializers.CharField(help_text="the host relative to the domain, as most DNS providers ask; @ is "
                                                 "the domain itself")
    required = serializers.BooleanField(help_text="false for the records of automatic client setup")
    zone_line = serializers.CharField(help_text="the record as a zone-file line")
    type = serializers.CharField()
    value = serializers.CharField()
    strings = serializers.ListField(child=serializers.CharField(), required=False)
    status = serializers.CharField(help_text="found, missing, wrong, error or unchecked")
    found = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(allow_blank=True)


class VerificationSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    value = serializers.CharField()
    status = serializers.CharField()
    found = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(allow_blank=True)


class DomainSerializer(serializers.ModelSerializer):
    unicode_name = serializers.CharField(read_only=True)
    is_verified = serializers.BooleanField(read_only=True)

    class Meta:
        model = Domain
        fields = ["id", "name", "unicode_name", "customer", "status", "status_reason", "is_verified", "verified_at",
                  "dns_checked_at", "send_per_hour", "send_per_day", "max_storage_mb", "created_at"]
        read_only_fields = fields


class DkimStateSerializer(serializers.Serializer):
    signing = serializers.BooleanField(help_text="mail from the domain is DKIM-signed")
    text = serializers.CharField()


class DomainDetailSerializer(DomainSerializer):
    verification = VerificationSerializer(read_only=True)
    records = DnsRecordSerializer(many=True, read_only=True)
    dkim = DkimStateSerializer(read_only=True)

    class Meta(DomainSerializer.Meta):
        fields = [*DomainSerializer.Meta.fields, "verification", "records", "dkim"]
        read_only_fields = fields


class DomainCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=253)
    customer = serializers.IntegerField(required=False, help_text="Required unless the key is a customer's.")


# --- mailboxes -----------------------------------------------------------------------------------------------


class MailboxSerializer(serializers.ModelSerializer):
    address = serializers.CharField(read_only=True)
    unicode_address = serializers.CharField(read_only=True)

    class Meta:
        model = Mailbox
        fields = ["id", "address", "unicode_address", "domain", "local_part", "display_name", "quota_mb",
                  "used_bytes", "smtp_enabled", "is_active", "status_reason", "send_per_hour", "send_per_day",
                  "created_at"]
        read_only_fields = fields


class MailboxCreateSerializer(serializers.Serializer):
    domain = serializers.IntegerField()
    local_part = serializers.CharField(max_length=64)
    password = serializers.CharField(write_only=True, max_length=1024)
    quota_mb = serializers.IntegerField(min_value=1, max_value=2**31 - 1, default=1024)
    smtp_enabled = serializers.BooleanField(default=False)
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class MailboxUpdateSerializer(serializers.Serializer):
    quota_mb = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    smtp_enabled = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, max_length=1024)


# --- SMTP credentials ----------------------------------------------------------------------------------------


class CredentialSerializer(serializers.ModelSerializer):
    class Meta:
        model = SmtpCredential
        fields = ["id", "username", "customer", "domain", "mailbox", "description", "allowed_networks",
                  "expires_at", "is_active", "status_reason", "revoked_at", "last_used_at", "last_used_ip",
                  "send_per_hour", "send_per_day", "created_at"]
        read_only_fields = fields


class NewCredentialSerializer(CredentialSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown in this answer only; stored as a hash.")

    class Meta(CredentialSerializer.Meta):
        fields = [*CredentialSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class CredentialCreateSerializer(serializers.Serializer):
    domain = serializers.IntegerField(required=False, help_text="Scope: any address of this domain.")
    mailbox = serializers.IntegerField(required=False, help_text="Scope: this mailbox's address only.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    allowed_networks = serializers.CharField(required=False, allow_blank=True, default="",
                                             help_text="Addresses or CIDR networks, separated by spaces or commas.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class RevokeSerializer(serializers.Serializer):
    hold = serializers.BooleanField(default=False, help_text="Hold what it queued and has not delivered yet.")


# --- aliases -------------------------------------------------------------------------------------------------


class AliasSerializer(serializers.ModelSerializer):
    address = serializers.CharField(read_only=True)

    class Meta:
        model = Alias
        fields = ["id", "address", "domain", "local_part", "destinations", "is_enabled", "description", "created_at"]
        read_only_fields = fields


class AliasCreateSerializer(serializers.Serializer):
    domain = serializers.IntegerField()
    local_part = serializers.CharField(max_length=64)
    destinations = serializers.ListField(child=serializers.CharField(max_length=320), min_length=1, max_length=100)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class AliasUpdateSerializer(serializers.Serializer):
    destinations = serializers.ListField(child=serializers.CharField(max_length=320), min_length=1, max_length=100,
                                         required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_enabled = serializers.BooleanField(required=False)


# --- messages ------------------------------------------------------------------------------------------------


class RecipientSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Recipient
        fields = ["address", "state"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    recipients = RecipientSummarySerializer(many=True, read_only=True, source="preview_recipients",
                                            help_text="The first few recipients; recipient_count says how many.")
    recipient_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = QueuedMessage
        fields = ["id", "queue_id", "customer", "domain", "mail_from", "header_from", "subject", "size", "state",
                  "state_reason", "is_bounce", "attempts", "next_attempt_at", "created_at", "finished_at",
                  "recipients", "recipient_count"]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["started_at", "remote_host", "remote_ip", "code", "reply", "outcome"]
        read_only_fields = fields


class RecipientSerializer(serializers.ModelSerializer):
    attempts = serializers.SerializerMethodField()

    class Meta:
        model = Recipient
        fields = ["id", "address", "state", "last_code", "last_status", "last_reply", "remote_host", "delivered_at",
                  "attempts"]
        read_only_fields = fields

    @extend_schema_field(AttemptSerializer(many=True))
    def get_attempts(self, recipient):
        attempts = self.context.get("attempts", {}).get(recipient.pk, [])
        return AttemptSerializer(attempts, many=True).data


class MessageDetailSerializer(serializers.ModelSerializer):
    recipients = serializers.SerializerMethodField()

    class Meta:
        model = QueuedMessage
        fields = ["id", "queue_id", "customer", "domain", "mailbox", "credential", "mail_from", "header_from",
                  "subject", "message_id", "size", "state", "state_reason", "is_bounce", "bounce_of", "client_ip",
                  "attempts", "next_attempt_at", "dkim_signed", "tls_version", "created_at", "finished_at",
                  "recipients"]
        read_only_fields = fields

    @extend_schema_field(RecipientSerializer(many=True))
    def get_recipients(self, message):
        attempts: dict[int, list] = {}
        for attempt in message.delivery_attempts.all():
            attempts.setdefault(attempt.recipient_id, []).append(attempt)
        return RecipientSerializer(message.recipients.all(), many=True, context={"attempts": attempts}).data


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)
    bounce = serializers.BooleanField(default=False, help_text="Tell the sender with a bounce (DSN).")


# --- webhooks ------------------------------------------------------------------------------------------------


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEventType.choices),
                                   help_text="Event types sent; empty: all of them.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "description", "customer", "reseller", "is_active", "disabled_reason",
                  "disabled_at", "consecutive_failures", "created_at"]
        read_only_fields = fields


class NewWebhookSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret: shown in this answer only.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEventType.choices), required=False,
                                   default=list, help_text="Event types to send; empty or left out: all of them.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    customer = serializers.IntegerField(required=False, help_text="For one customer (resellers and support).")
    reseller = serializers.IntegerField(required=False, help_text="For all of a reseller's customers (support).")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.uuid", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    payload = serializers.JSONField(source="event.payload", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "payload", "state", "attempts", "next_attempt_at",
                  "last_status_code", "last_error", "last_attempt_at", "delivered_at", "created_at"]
        read_only_fields = fields


class RedeliverSerializer(serializers.Serializer):
    delivery = serializers.IntegerField(help_text="One of this endpoint's deliveries.")
