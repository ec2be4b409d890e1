"""SMTP credentials (app passwords): created with a secret shown once, revoked."""

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import hashing
from accounts.models import Domain, Mailbox, SmtpCredential, User
from accounts.networks import InvalidNetwork, parse_networks
from accounts.services.audit_log import audit, snapshot
from accounts.services.logins import hold_queued, logins_end


@dataclass(frozen=True)
class NewCredential:
    credential: SmtpCredential
    secret: str  # shown once, never stored


def credential_create(*, actor: User | None, domain: Domain, mailbox: Mailbox | None = None, description: str = "",
                      allowed_networks: str = "", expires_at: datetime | None = None,
                      client_ip: str | None = None) -> NewCredential:
    if mailbox is not None and mailbox.domain_id != domain.pk:
        raise ValidationError({"mailbox": _("That mailbox is not in this domain.")})
    try:
        networks = parse_networks(allowed_networks)
    except InvalidNetwork as exc:
        raise ValidationError({"allowed_networks": exc.messages}) from None
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    secret = secrets.token_urlsafe(24)  # 192 random bits: stored under a keyed fast hash, not a slow one
    secret_hash = hashing.make_secret_hash(secret)
    with transaction.atomic():
        # No "@" in it: a credential's username can never be mistaken for a mailbox address.
        username = f"smtp-{secrets.token_hex(6)}"
        while SmtpCredential.objects.filter(username=username).exists():
            username = f"smtp-{secrets.token_hex(6)}"
        credential = SmtpCredential.objects.create(
            username=username, secret_hash=secret_hash, customer_id=domain.customer_id, domain=domain, mailbox=mailbox,
            description=description, allowed_networks="\n".join(str(network) for network in networks), expires_at=expires_at,
            created_by=actor if actor is not None and actor.pk else None,
        )
        audit(actor=actor, action="credential.create", obj=credential, after=snapshot(credential), client_ip=client_ip)
    return NewCredential(credential=credential, secret=secret)


def credential_revoke(*, actor: User | None, credential: SmtpCredential, client_ip: str | None = None,
                      hold: bool = False) -> SmtpCredential:
    """Revoke for good; open sessions stop at their next MAIL. `hold`: the credential may have leaked, so what it
    queued and has not delivered yet is held for support to release or cancel."""
    with transaction.atomic():
        credential = SmtpCredential.objects.select_for_update().get(pk=credential.pk)
        before = snapshot(credential)
        credential.is_active = False
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["is_active", "revoked_at"])
        logins_end(customer_ids=[credential.customer_id])
        audit(actor=actor, action="credential.revoke", obj=credential, before=before, after=snapshot(credential),
              client_ip=client_ip, reason="queued mail held" if hold else "")
        if hold:
            hold_queued(obj=credential, reason=f"credential {credential.username} revoked")
    return credential
