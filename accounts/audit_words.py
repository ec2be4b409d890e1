"""The audit log in words: what an entry changed, field by field, as people say it ("SMTP access turned on",
"Sending limit per hour 100 → 500"), never the internals it was stored with (ids, tokens, key blobs, hashes).

Who sees what of support's own actions: support staff see the agent's username and client address; customers and
resellers see "Support" and the reason support gave, never the agent's name or address. A reseller's or a
customer's own actions read the same for both of them (their own users acted).
"""

from dataclasses import dataclass

from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

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

# field: (label, unit shown after the number). Labels and words are translated when a row is shown, in the
# reader's language; the stored entry keeps field names and raw values only.
FIELDS = {
    "name": (_("Name"), ""), "local_part": (_("Address"), ""), "display_name": (_("Display name"), ""),
    "description": (_("Description"), ""), "status": (_("Status"), ""), "status_reason": (_("Status reason"), ""),
    "contact_email": (_("Contact address"), ""), "external_id": (_("External id"), ""),
    "send_per_hour": (_("Sending limit per hour"), ""), "send_per_day": (_("Sending limit per day"), ""),
    "max_customers": (_("Customers allowed"), ""), "max_domains": (_("Domains allowed"), ""),
    "max_mailboxes": (_("Mailboxes allowed"), ""), "max_aliases": (_("Aliases allowed"), ""),
    "max_storage_mb": (_("Storage"), " MB"), "quota_mb": (_("Mailbox storage"), " MB"),
    "max_message_size": (_("Largest message"), " MB"), "max_recipients": (_("Recipients per message"), ""),
    "destinations": (_("Delivers to"), ""), "forward_to": (_("Forwards to"), ""),
    "catchall": (_("Catch-all address"), ""), "alias_of_name": (_("Alias of domain"), ""),
    "allowed_networks": (_("Allowed networks"), ""), "expires_at": (_("Expires"), ""),
    "smarthost_url": (_("Smart host"), ""), "panel_title": (_("Panel title"), ""),
    "support_email": (_("Support address"), ""), "help_url": (_("Help page"), ""),
    "brand_color": (_("Brand colour"), ""),
    "dmarc_reject_policy": (_("Mail failing the sender's DMARC reject policy"), ""), "username": (_("User"), ""),
    "role": (_("Role"), ""), "device": (_("Device"), ""), "held": (_("Messages held"), ""),
    "released": (_("Messages released"), ""), "sessions": (_("Sessions signed out"), ""),
    "domains": (_("Domains"), ""), "plan_template": (_("Plan template"), ""), "state": (_("State"), ""),
    # Read as their field names read (the English is what the log has always shown), so that they translate too.
    "address": (_("Address"), ""), "subject": (_("Subject"), ""), "body": (_("Body"), ""),
    "enabled": (_("Enabled"), ""), "starts_on": (_("Starts on"), ""), "ends_on": (_("Ends on"), ""),
    "interval_days": (_("Interval days"), ""), "greylisting": (_("Greylisting"), ""), "kind": (_("Kind"), ""),
    "value": (_("Value"), ""), "mark_score": (_("Mark score"), ""), "reject_score": (_("Reject score"), ""),
    "min_score": (_("Min score"), ""), "max_score": (_("Max score"), ""), "quarantine": (_("Quarantine"), ""),
    "mode": (_("Mode"), ""), "rules": (_("Rules"), ""), "script": (_("Script"), ""),
    "panel_host": (_("Panel host"), ""), "email": (_("Email"), ""), "reason": (_("Reason"), ""),
    "events": (_("Events"), ""), "version": (_("Version"), ""), "updated_at": (_("Updated at"), ""),
    "language": (_("Language"), ""),
}
# Booleans read as a sentence: field: (label, on, off).
SWITCHES = {
    "smtp_enabled": (_("SMTP access"), _("turned on"), _("turned off")),
    "is_active": (_("Enabled"), _("yes"), _("no")),
    "is_enabled": (_("Enabled"), _("yes"), _("no")),
    "forward_keep_copy": (_("Keep a copy when forwarding"), _("yes"), _("no")),
    "read_only": (_("Read-only"), _("yes"), _("no")),
}
# Stored values that are words of the panel's own (a status): shown in the reader's language.
VALUES = {"status": {"active": _("active"), "suspended": _("suspended"), "pending": _("pending")},
          "language": {"": _("as the browser says"), "en": "English", "de": "Deutsch"}}
# The action's headline; unknown actions read "<object> <verb>".
ACTIONS = {
    "create": _("created"), "update": _("changed"), "delete": _("deleted"), "suspend": _("suspended"),
    "restore": _("restored"), "limits": _("limits changed"), "password": _("password set"),
    "password_reset_request": _("password reset link requested"), "verify": _("verified"), "revoke": _("revoked"),
    "branding": _("brand changed"), "catchall": _("catch-all changed"), "alias_of": _("alias domain changed"),
    "forwarding": _("forwarding changed"), "dns_changed": _("DNS state changed"),
    "dmarc_reject_policy": _("DMARC handling changed"), "smarthost": _("smart host changed"),
    "otp_enable": _("two-factor sign-in turned on"), "otp_disable": _("two-factor sign-in turned off"),
    "recovery_codes": _("new recovery codes made"), "session_revoke": _("signed out elsewhere"),
    "enable": _("enabled"), "redeliver": _("delivery retried"), "hold": _("mail held"), "release": _("mail released"),
    "retry": _("retried"), "cancel": _("cancelled"), "lift": _("lifted"), "import": _("imported"),
    # As their names read, translated.
    "filters": _("filters"), "auto_reply": _("auto reply"), "thresholds": _("thresholds"), "bounds": _("bounds"),
    "sender_rule_add": _("sender rule add"), "sender_rule_delete": _("sender rule delete"),
    "login_link": _("login link"), "login_link_used": _("login link used"), "language": _("language changed"),
}
OBJECTS = {"smtpcredential": _("SMTP credential"), "authlockout": _("Lockout"), "queuedmessage": _("Message"),
           "api_key": _("API key"), "plantemplate": _("Plan template")}
# The action's own first part, when neither it nor the object's type is in OBJECTS.
KINDS = {"alias": _("Alias"), "customer": _("Customer"), "domain": _("Domain"), "mailbox": _("Mailbox"),
         "user": _("User"), "reseller": _("Reseller"), "webhook": _("Webhook"), "spam": _("Spam"),
         "quarantine": _("Quarantine"), "credential": _("Credential"), "lockout": _("Lockout"),
         "message": _("Message")}


def _plain(value) -> str:
    if value is None or value == "":
        return gettext("none")
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or gettext("none")
    return str(value)


def _value(field: str, value) -> str:
    if field == "max_message_size" and isinstance(value, int):
        return f"{value / (1024 * 1024):g}"
    if field in ("send_per_hour", "send_per_day") and value is None:
        return gettext("no limit of its own")
    if isinstance(value, str) and value in VALUES.get(field, {}):
        return str(VALUES[field][value])
    return _plain(value)


def _shown(field: str) -> bool:
    return field not in HIDDEN and not field.endswith("_id") and not is_secret_name(field)


def field_change(field: str, before, after, *, created: bool = False) -> str | None:
    """One changed field in words, or None when it is not a change people are shown."""
    if not _shown(field) or REDACTED in (before, after):
        return None
    if field in SWITCHES:
        label, on, off = SWITCHES[field]
        return pgettext("audit switch", "%(label)s %(state)s") % {"label": label, "state": on if after else off}
    label, unit = FIELDS.get(field, (field.replace("_", " ").capitalize(), ""))
    new = _value(field, after) + (unit if after not in (None, "") else "")
    if created:
        return pgettext("audit value", "%(label)s: %(value)s") % {"label": label, "value": new}
    old = _value(field, before) + (unit if before not in (None, "") else "")
    return pgettext("audit change", "%(label)s %(old)s → %(new)s") % {"label": label, "old": old, "new": new}


def changes(entry: AuditEntry) -> list[str]:
    """What the entry changed, one line per field; a creation lists what was set, a deletion what went."""
    before, after = entry.before or {}, entry.after or {}
    if not after:  # a deletion or an action without values: what went, by name
        names = [pgettext("audit value", "%(label)s: %(value)s") % {"label": FIELDS.get(k, (k.capitalize(),))[0],
                                                                   "value": _plain(v)}
                 for k, v in before.items() if k in ("name", "local_part", "domains", "sessions") and _shown(k)]
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
    kind, _sep, verb = entry.action.partition(".")
    what = (OBJECTS.get(kind) or OBJECTS.get(entry.object_type) or KINDS.get(kind)
            or kind.replace("_", " ").capitalize())
    return pgettext("audit headline", "%(object)s %(action)s") % {
        "object": what, "action": ACTIONS.get(verb, verb.replace("_", " "))}


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
        who=gettext("Support") if hide_agent else entry.actor_label,
        headline=headline(entry),
        changes=changes(entry),
        reason=entry.reason,
        client_ip="" if hide_agent else (entry.client_ip or ""),
    )
