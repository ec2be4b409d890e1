"""Every change to accounts goes through here: atomic, checked against the plan, written to the audit log."""

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts import hashing
from accounts.models import AuditEntry, Customer, Domain, Mailbox, Reseller, SmtpCredential, User
from accounts.normalize import normalize_domain, normalize_local_part

# Fields never copied into the audit log.
_SECRET_FIELDS = {"password_hash", "secret_hash", "dkim_private_key", "password", "logo"}


def snapshot(obj) -> dict:
    data = model_to_dict(obj)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items() if k not in _SECRET_FIELDS}


def _tenant_of(obj) -> tuple[Customer | None, Reseller | None]:
    if isinstance(obj, Reseller):
        return None, obj
    if isinstance(obj, Customer):
        return obj, obj.reseller
    customer = getattr(obj, "customer", None)
    if customer is None and isinstance(obj, Mailbox):
        customer = obj.domain.customer
    return customer, customer.reseller if customer else None


def audit(*, actor: User | None, action: str, obj, before: dict | None = None, after: dict | None = None,
          reason: str = "", client_ip: str | None = None) -> AuditEntry:
    customer, reseller = _tenant_of(obj)
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor.get_username() if actor is not None else "system",
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        customer=customer,
        reseller=reseller,
        before=before or {},
        after=after or {},
        reason=reason[:500],
        client_ip=client_ip,
    )


# --- resellers, customers, staff -------------------------------------------------------------------------


def reseller_create(*, actor: User | None, name: str, client_ip: str | None = None, **fields) -> Reseller:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Enter a name."})
    with transaction.atomic():
        if Reseller.objects.filter(name__iexact=name).exists():
            raise ValidationError({"name": f"A reseller named “{name}” already exists."})
        reseller = Reseller.objects.create(name=name, **fields)
        audit(actor=actor, action="reseller.create", obj=reseller, after=snapshot(reseller), client_ip=client_ip)
    return reseller


def customer_create(*, actor: User | None, name: str, reseller: Reseller | None = None,
                    client_ip: str | None = None, **plan) -> Customer:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Enter a name."})
    with transaction.atomic():
        if Customer.objects.filter(reseller=reseller, name__iexact=name).exists():
            raise ValidationError({"name": f"A customer named “{name}” already exists."})
        customer = Customer(name=name, reseller=reseller, **plan)
        customer.full_clean()
        customer.save()
        audit(actor=actor, action="customer.create", obj=customer, after=snapshot(customer), client_ip=client_ip)
    return customer


def user_create(*, actor: User | None, username: str, password: str | None, role: str,
                customer: Customer | None = None, reseller: Reseller | None = None, email: str = "",
                client_ip: str | None = None) -> User:
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": "Enter a username."})
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError({"username": f"The username “{username}” is taken."})
        user = User(username=username, role=role, customer=customer, reseller=reseller, email=email,
                    is_staff=role == User.Role.SUPPORT)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        audit(actor=actor, action="user.create", obj=customer or reseller or user,
              after={"username": username, "role": role}, client_ip=client_ip)
    return user


def user_set_password(*, actor: User | None, user: User, password: str, client_ip: str | None = None) -> None:
    """A panel user's own sign-in password (validated by the caller's form against AUTH_PASSWORD_VALIDATORS)."""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit(actor=actor, action="user.password", obj=user.customer or user.reseller or user,
              after={"username": user.get_username()}, client_ip=client_ip)


# --- domains -----------------------------------------------------------------------------------------------


def domain_create(*, actor: User | None, customer: Customer, name: str, verified: bool = False,
                  client_ip: str | None = None) -> Domain:
    ascii_name = normalize_domain(name)
    with transaction.atomic():
        # Lock the customer row so two concurrent adds cannot both take the last slot of the plan.
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if Domain.objects.filter(name=ascii_name).exists():
            raise ValidationError({"name": f"The domain {name.strip()} is already registered here."})
        count = customer.domains.count()
        if count >= customer.max_domains:
            raise ValidationError({"name": f"Your plan allows {customer.max_domains} domains and all are in use."})
        domain = Domain(name=ascii_name, customer=customer, dkim_selector=settings.DKIM_SELECTOR)
        domain.dkim_private_key, domain.dkim_public_key = dkim_keypair()
        if verified:
            domain.verified_at = timezone.now()
            domain.status = Domain.DomainStatus.ACTIVE
        domain.save()
        audit(actor=actor, action="domain.create", obj=domain, after=snapshot(domain), client_ip=client_ip)
    return domain


def dkim_keypair(bits: int | None = None) -> tuple[str, str]:
    """(private key PEM, public key as the base64 DER the DKIM TXT record's p= carries)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits or settings.DKIM_KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, base64.b64encode(public_der).decode()


def domain_mark_verified(*, actor: User | None, domain: Domain, client_ip: str | None = None) -> Domain:
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        if domain.verified_at:
            return domain
        before = snapshot(domain)
        domain.verified_at = timezone.now()
        if domain.status == Domain.DomainStatus.PENDING:
            domain.status = Domain.DomainStatus.ACTIVE
        domain.save(update_fields=["verified_at", "status"])
        audit(actor=actor, action="domain.verify", obj=domain, before=before, after=snapshot(domain), client_ip=client_ip)
    return domain


def domain_delete(*, actor: User | None, domain: Domain, client_ip: str | None = None) -> None:
    with transaction.atomic():
        before = snapshot(domain)
        audit(actor=actor, action="domain.delete", obj=domain, before=before, client_ip=client_ip)
        domain.delete()


# --- mailboxes ---------------------------------------------------------------------------------------------


def validate_mailbox_password(password: str, *, address: str = "") -> None:
    errors = []
    if len(password or "") < settings.MAILBOX_PASSWORD_MIN_LENGTH:
        errors.append(f"Use at least {settings.MAILBOX_PASSWORD_MIN_LENGTH} characters.")
    if password and password.isdigit():
        errors.append("Use more than digits.")
    if password and address and address.split("@")[0].lower() in password.lower():
        errors.append("Do not put the address in the password.")
    if password and password != password.strip():
        errors.append("Do not start or end the password with a space.")
    if errors:
        raise ValidationError({"password": errors})


def _check_storage(customer: Customer, *, extra_mb: int, domain: Domain, exclude: Mailbox | None = None) -> None:
    """Room for extra_mb more in the customer's plan, and within the domain's own share if it has one."""
    from django.db.models import Sum

    qs = Mailbox.objects.filter(domain__customer=customer)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    allocated = qs.aggregate(total=Sum("quota_mb"))["total"] or 0
    if allocated + extra_mb > customer.max_storage_mb:
        left = max(customer.max_storage_mb - allocated, 0)
        raise ValidationError({"quota_mb": f"Your plan has {left} MB of storage left to allocate."})
    cap = Domain.objects.filter(pk=domain.pk).values_list("max_storage_mb", flat=True).first()
    if cap is not None:
        in_domain = qs.filter(domain=domain).aggregate(total=Sum("quota_mb"))["total"] or 0
        if in_domain + extra_mb > cap:
            left = max(cap - in_domain, 0)
            raise ValidationError({"quota_mb": f"{domain.unicode_name} has {left} MB of storage left to allocate."})


def mailbox_create(*, actor: User | None, domain: Domain, local_part: str, password: str, quota_mb: int = 1024,
                   smtp_enabled: bool = False, display_name: str = "", client_ip: str | None = None) -> Mailbox:
    local = normalize_local_part(local_part)
    validate_mailbox_password(password, address=f"{local}@{domain.name}")
    password_hash = hashing.make_hash(password)  # slow: outside the transaction and its locks
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=domain.customer_id)
        if Mailbox.objects.filter(domain=domain, local_part=local).exists():
            raise ValidationError({"local_part": f"{local}@{domain.unicode_name} already exists."})
        if Mailbox.objects.filter(domain__customer=customer).count() >= customer.max_mailboxes:
            raise ValidationError({"local_part": f"Your plan allows {customer.max_mailboxes} mailboxes and all are in use."})
        _check_storage(customer, extra_mb=quota_mb, domain=domain)
        mailbox = Mailbox(domain=domain, local_part=local, password_hash=password_hash, quota_mb=quota_mb,
                          smtp_enabled=smtp_enabled, display_name=display_name)
        mailbox.save()
        audit(actor=actor, action="mailbox.create", obj=mailbox, after=snapshot(mailbox), client_ip=client_ip)
    return mailbox


def mailbox_update(*, actor: User | None, mailbox: Mailbox, client_ip: str | None = None, reason: str = "",
                   **changes) -> Mailbox:
    allowed = {"quota_mb", "smtp_enabled", "is_active", "display_name", "send_per_hour", "send_per_day", "status_reason"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"mailbox_update cannot change {sorted(unknown)}")
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=mailbox.domain.customer_id)
        mailbox = Mailbox.objects.select_for_update().select_related("domain").get(pk=mailbox.pk)
        if "quota_mb" in changes:
            used_mb = -(-mailbox.used_bytes // (1024 * 1024))
            if changes["quota_mb"] < used_mb:
                raise ValidationError({"quota_mb": f"{mailbox.unicode_address} already stores {used_mb} MB; "
                                                   "the quota cannot be lower."})
            _check_storage(customer, extra_mb=changes["quota_mb"], domain=mailbox.domain, exclude=mailbox)
        before = snapshot(mailbox)
        for key, value in changes.items():
            setattr(mailbox, key, value)
        mailbox.save()
        audit(actor=actor, action="mailbox.update", obj=mailbox, before=before, after=snapshot(mailbox),
              reason=reason, client_ip=client_ip)
    return mailbox


def mailbox_set_password(*, actor: User | None, mailbox: Mailbox, password: str, client_ip: str | None = None) -> None:
    validate_mailbox_password(password, address=mailbox.address)
    password_hash = hashing.make_hash(password)
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(password_hash=password_hash)
        mailbox.password_hash = password_hash
        # The owner's panel sessions are bound to User.password (unusable for mailbox owners): a fresh one
        # ends every session signed in with the old mailbox password.
        User.objects.filter(mailbox=mailbox).update(password=make_password(None))
        audit(actor=actor, action="mailbox.password", obj=mailbox, client_ip=client_ip)


def mailbox_delete(*, actor: User | None, mailbox: Mailbox, client_ip: str | None = None) -> None:
    with transaction.atomic():
        audit(actor=actor, action="mailbox.delete", obj=mailbox, before=snapshot(mailbox), client_ip=client_ip)
        mailbox.delete()


# --- SMTP credentials --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewCredential:
    credential: SmtpCredential
    secret: str  # shown once, never stored


def parse_networks(text: str) -> list[str]:
    """Normalised CIDRs from a comma/space/newline separated list; ValidationError naming the bad entry."""
    networks = []
    for item in (text or "").replace(",", " ").split():
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValidationError({"allowed_networks": f"“{item}” is not an IP address or network (CIDR)."}) from None
    return networks


def credential_create(*, actor: User | None, domain: Domain, mailbox: Mailbox | None = None, description: str = "",
                      allowed_networks: str = "", expires_at: datetime | None = None,
                      client_ip: str | None = None) -> NewCredential:
    if mailbox is not None and mailbox.domain_id != domain.pk:
        raise ValidationError({"mailbox": "That mailbox is not in this domain."})
    networks = parse_networks(allowed_networks)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    secret = secrets.token_urlsafe(24)
    secret_hash = hashing.make_hash(secret)
    with transaction.atomic():
        # No "@" in it: a credential's username can never be mistaken for a mailbox address.
        username = f"smtp-{secrets.token_hex(6)}"
        while SmtpCredential.objects.filter(username=username).exists():
            username = f"smtp-{secrets.token_hex(6)}"
        credential = SmtpCredential.objects.create(
            username=username, secret_hash=secret_hash, customer_id=domain.customer_id, domain=domain, mailbox=mailbox,
            description=description, allowed_networks="\n".join(networks), expires_at=expires_at,
            created_by=actor if actor is not None and actor.pk else None,
        )
        audit(actor=actor, action="credential.create", obj=credential, after=snapshot(credential), client_ip=client_ip)
    return NewCredential(credential=credential, secret=secret)


def credential_revoke(*, actor: User | None, credential: SmtpCredential, client_ip: str | None = None) -> SmtpCredential:
    with transaction.atomic():
        credential = SmtpCredential.objects.select_for_update().get(pk=credential.pk)
        before = snapshot(credential)
        credential.is_active = False
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["is_active", "revoked_at"])
        audit(actor=actor, action="credential.revoke", obj=credential, before=before, after=snapshot(credential),
              client_ip=client_ip)
    return credential
