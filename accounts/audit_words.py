"""The audit log in words: what an entry changed, field by field, as people say it ("SMTP access turned on",
"Sending limit per hour 100 → 500"), never the internals it was stored with (ids, tokens, key blobs, hashes).

Who sees what of support's own actions: support staff see the agent's username and client address; customers and
resellers see "Support" and the reason support gave, never the agent's name or address. A reseller's or a
customer's own actions read the same for both of them (their own users acted).
"""

from dataclasses import dataclass

from accounts.models import AuditEntry, User
from accounts.services.audit_log import REDACTED, is_secret_name

# Stored for the record (or for support's tools), not a change a person made.
HIDDEN = {
    "id", "verification_token", "dkim_private_key", "dkim_public_key", "dkim_selector", "dns_status",
    "dns_checked_at", "login_generation", "used_bytes", "used_messages", "usage_updated_at", "last_used_at",
    "last_used_ip", "created_at", "revoked_at", "created_by", "verified_at", "secret_hash", "password_hash",
    "logo", "session",
    # Foreign keys are snapshotted as ids; the entry names its object and customer already.
    "customer", "reseller", "domain", "mailbox", "user", "alias_of",
}

# field: (label, unit shown after the number)
FIELDS = {
    "name": ("Name", ""), "local_part": ("Address", ""), "display_name": ("Display name", ""),
    "description": ("Description", ""), "status": ("Status", ""), "status_reason": ("Status reason", ""),
    "contact_email": ("Contact address", ""), "external_id": ("External id", ""),
    "send_per_hour": ("Sending limit per hour", ""), "send_per_day": ("Sending limit per day", ""),
    "max_customers": ("Customers allowed", ""), "max_domains": ("Domains allowed", ""),
    "max_mailboxes": ("Mailboxes allowed", ""), "max_aliases": ("Aliases allowed", ""),
    "max_storage_mb": ("Storage", " MB"), "quota_mb": ("Mailbox storage", " MB"),
    "max_message_size": ("Largest message", " MB"), "max_recipients": ("Recipients per message", ""),
    "destinations": ("Delivers to", ""), "forward_to": ("Forwards to", ""), "catchall": ("Catch-all address", ""),
    "alias_of_name": ("Alias of domain", ""), "allowed_networks": ("Allowed networks", ""),
    "expires_at": ("Expires", ""), "smarthost_url": ("Smart host", ""), "panel_title": ("Panel title", ""),
    "support_email": ("Support address", ""), "help_url": ("Help page", ""), "brand_color": ("Brand colour", ""),
    "dmarc_reject_policy": ("Mail failing the sender's DMARC reject policy", ""), "username": ("User", ""),
    "role": ("Role", ""), "device": ("Device", ""), "held": ("Messages held", ""),
    "released": ("Messages released", ""), "sessions": ("Sessions signed out", ""), "domains": ("Domains", ""),
    "plan_template": ("Plan template", ""), "state": ("State", ""),
}
# Booleans read as a sentence: field: (label, on, off).
SWITCHES = {
    "smtp_enabled": ("SMTP access", "turned on", "turned off"),
    "is_active": ("Enabled", "yes", "no"),
    "is_enabled": ("Enabled", "yes", "no"),
    "forward_keep_copy": ("Keep a copy when forwarding", "yes", "no"),
    "read_only": ("Read-only", "yes", "no"),
}
# The action's headline; unknown actions read "<object> <verb>".
ACTIONS = {
    "create": "created", "update": "changed", "delete": "deleted", "suspend": "suspended", "restore": "restored",
    "limits": "limits changed", "password": "password set", "password_reset_request": "password reset link requested",
    "verify": "verified", "revoke": "revoked", "branding": "brand changed", "catchall": "catch-all changed",
    "alias_of": "alias domain changed", "forwarding": "forwarding changed", "dns_changed": "DNS state changed",
    "dmarc_reject_policy": "DMARC handling changed", "smarthost": "smart host changed",
    "otp_enable": "two-factor sign-in turned on", "otp_disable": "two-factor sign-in turned off",
    "recovery_codes": "new recovery codes made", "session_revoke": "signed out elsewhere",
    "enable": "enabled", "redeliver": "delivery retried", "hold": "mail held", "release": "mail released",
    "retry": "retried", "cancel": "cancelled", "lift": "lifted", "import": "imported",
}
OBJECTS = {"smtpcredential": "SMTP credential", "authlockout": "Lockout", "queuedmessage": "Message",
           "api_key": "API key", "plantemplate": "Plan template"}


def _plain(value) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "none"
    return str(value)


def _value(field: str, value) -> str:
    if field == "max_message_size" and isinstance(value, int):
        return f"{value / (1024 * 1024):g}"
    if field in ("send_per_hour", "send_per_day") and value is None:
        return "no limit of its own"
    return _plain(value)


def _shown(field: str) -> bool:
    return field not in HIDDEN and not field.endswith("_id") and not is_secret_name(field)


def field_change(field: str, before, after, *, created: bool = False) -> str | None:
    """One changed field in words, or None when it is not a change people are shown."""
    if not _shown(field) or REDACTED in (before, after):
        return None
    if field in SWITCHES:
        label, on, off = SWITCHES[field]
        return f"{label} {on if after else off}"
    label, unit = FIELDS.get(field, (field.replace("_", " ").capitalize(), ""))
    new = _value(field, after) + (unit if after not in (None, "") else "")
    if created:
        return f"{label}: {new}"
    old = _value(field, before) + (unit if before not in (None, "") else "")
    return f"{label} {old} → {new}"


def changes(entry: AuditEntry) -> list[str]:
    """What the entry changed, one line per field; a creation lists what was set, a deletion what went."""
    before, after = entry.before or {}, entry.after or {}
    if not after:  # a deletion or an action without values: what went, by name
        names = [f"{FIELDS.get(k, (k.capitalize(),))[0]}: {_plain(v)}" for k, v in before.items()
                 if k in ("name", "local_part", "domains", "sessions") and _shown(k)]
        return names
    lines = []
    for field, value in after.items():
        created = field not in before
        if (not created and before[field] == value) or (created and value in (None, "", [])):
            continue
        line = field_change(field, before.get(field), value, created=created)
        if line:
            lines.append(line)
    return lines


def headline(entry: AuditEntry) -> str:
    kind, _, verb = entry.action.partition(".")
    what = OBJECTS.get(kind) or OBJECTS.get(entry.object_type) or kind.replace("_", " ").capitalize()
    return f"{what} {ACTIONS.get(verb, verb.replace('_', ' '))}"


@dataclass(frozen=True)
class Row:
    entry: AuditEntry
    who: str
    headline: str
    changes: list[str]
    reason: str
    client_ip: str


def row_for(entry: AuditEntry, viewer: User) -> Row:
    """The entry as this viewer may read it (see the module's docstring for support's own actions)."""
    by_support = entry.actor is not None and entry.actor.is_support
    hide_agent = by_support and not viewer.is_support
    return Row(
        entry=entry,
        who="Support" if hide_agent else entry.actor_label,
        headline=headline(entry),
        changes=changes(entry),
        reason=entry.reason,
        client_ip="" if hide_agent else (entry.client_ip or ""),
    )
