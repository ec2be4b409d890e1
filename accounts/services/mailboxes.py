"""Mailboxes: creation within the plan's counts and storage, changes, passwords, deletion."""

import secrets
import string

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import hashing
from accounts.bounds import too_large
from accounts.models import Alias, Customer, Domain, DovecotQuota, Mailbox, User
from accounts.normalize import normalize_local_part
from accounts.services.audit_log import audit, snapshot
from accounts.services.logins import logins_end
from accounts.services.routes import routes_changed
from accounts.services.suspension import suspension_event


def validate_mailbox_password(password: str, *, address: str = "") -> None:
    errors = []
    if len(password or "") < settings.MAILBOX_PASSWORD_MIN_LENGTH:
        errors.append(_("Use at least %(count)s characters.") % {"count": settings.MAILBOX_PASSWORD_MIN_LENGTH})
    if password and password.isdigit():
        errors.append(_("Use more than digits."))
    if password and address and address.split("@")[0].lower() in password.lower():
        errors.append(_("Do not put the address in the password."))
    if password and password != password.strip():
        errors.append(_("Do not start or end the password with a space."))
    if errors:
        raise ValidationError({"password": errors})


def generate_password(*, address: str = "") -> str:
    """20 characters from letters and digits (about 119 bits), accepted by the mailbox password rules."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(20))
        try:
            validate_mailbox_password(password, address=address)
            return password
        except ValidationError:
            continue


def _check_storage(customer: Customer, *, extra_mb: int, domain: Domain, exclude: Mailbox | None = None) -> None:
    """Room for extra_mb more in the customer's plan, and within the domain's own share if it has one."""
    qs = Mailbox.objects.filter(domain__customer=customer)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    allocated = qs.aggregate(total=Sum("quota_mb"))["total"] or 0
    if allocated + extra_mb > customer.max_storage_mb:
        left = max(customer.max_storage_mb - allocated, 0)
        raise ValidationError({"quota_mb": _("Your plan has %(left)s MB of storage left to allocate.")
                                           % {"left": left}})
    cap = Domain.objects.filter(pk=domain.pk).values_list("max_storage_mb", flat=True).first()
    if cap is not None:
        in_domain = qs.filter(domain=domain).aggregate(total=Sum("quota_mb"))["total"] or 0
        if in_domain + extra_mb > cap:
            left = max(cap - in_domain, 0)
            raise ValidationError({"quota_mb": _("%(domain)s has %(left)s MB of storage left to allocate.")
                                               % {"domain": domain.unicode_name, "left": left}})


def _check_quota(quota_mb: int) -> None:
    if quota_mb < 1:
        raise ValidationError({"quota_mb": _("Enter at least 1 MB.")})
    if error := too_large(Mailbox, "quota_mb", quota_mb):
        raise ValidationError({"quota_mb": error})


def mailbox_create(*, actor: User | None, domain: Domain, local_part: str, password: str, quota_mb: int = 1024,
                   smtp_enabled: bool = False, display_name: str = "", client_ip: str | None = None) -> Mailbox:
    local = normalize_local_part(local_part)
    _check_quota(quota_mb)
    validate_mailbox_password(password, address=f"{local}@{domain.name}")
    password_hash = hashing.make_hash(password)  # slow: outside the transaction and its locks
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=domain.customer_id)
        if Mailbox.objects.filter(domain=domain, local_part=local).exists():
            raise ValidationError({"local_part": _("%(address)s already exists.")
                                                 % {"address": f"{local}@{domain.unicode_name}"}})
        if Alias.objects.filter(domain=domain, local_part=local).exists():
            raise ValidationError({"local_part": _("%(address)s is an alias; delete it first.")
                                                 % {"address": f"{local}@{domain.unicode_name}"}})
        if Mailbox.objects.filter(domain__customer=customer).count() >= customer.max_mailboxes:
            raise ValidationError({"local_part": _("Your plan allows %(count)s mailboxes and all are in use.")
                                                 % {"count": customer.max_mailboxes}})
        _check_storage(customer, extra_mb=quota_mb, domain=domain)
        mailbox = Mailbox(domain=domain, local_part=local, password_hash=password_hash, quota_mb=quota_mb,
                          smtp_enabled=smtp_enabled, display_name=display_name)
        mailbox.save()
        routes_changed()  # an address the catch-all or an alias domain took now goes here
        audit(actor=actor, action="mailbox.create", obj=mailbox, after=snapshot(mailbox), client_ip=client_ip)
    return mailbox


def mailbox_update(*, actor: User | None, mailbox: Mailbox, client_ip: str | None = None, reason: str = "",
                   **changes) -> Mailbox:
    allowed = {"quota_mb", "smtp_enabled", "is_active", "display_name", "send_per_hour", "send_per_day", "status_reason"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"mailbox_update cannot change {sorted(unknown)}")
    if "quota_mb" in changes:
        _check_quota(changes["quota_mb"])
    for field in ("send_per_hour", "send_per_day"):
        if changes.get(field) is not None and (changes[field] < 0 or too_large(Mailbox, field, changes[field])):
            raise ValidationError({field: too_large(Mailbox, field, changes[field]) or _("Enter zero or more.")})
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=mailbox.domain.customer_id)
        mailbox = Mailbox.objects.select_for_update().select_related("domain").get(pk=mailbox.pk)
        if "quota_mb" in changes:
            used_mb = -(-mailbox.used_bytes // (1024 * 1024))
            if changes["quota_mb"] < used_mb:
                raise ValidationError({"quota_mb": _("%(address)s already stores %(used)s MB; the quota cannot be "
                                                     "lower.") % {"address": mailbox.unicode_address, "used": used_mb}})
            _check_storage(customer, extra_mb=changes["quota_mb"], domain=mailbox.domain, exclude=mailbox)
        before = snapshot(mailbox)
        was_active = mailbox.is_active
        for key, value in changes.items():
            setattr(mailbox, key, value)
        mailbox.save()
        if mailbox.is_active != was_active:  # switched off or on here rather than through suspension
            suspension_event(mailbox, suspended=not mailbox.is_active, reason=reason or mailbox.status_reason)
        if not mailbox.is_active or not mailbox.smtp_enabled:
            logins_end(customer_ids=[customer.pk])
        if {"is_active", "quota_mb"} & set(changes):
            routes_changed()
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
        logins_end(customer_ids=[mailbox.domain.customer_id])  # and its SMTP sessions, at their next MAIL
        audit(actor=actor, action="mailbox.password", obj=mailbox, client_ip=client_ip)


def mailbox_delete(*, actor: User | None, mailbox: Mailbox, client_ip: str | None = None) -> None:
    with transaction.atomic():
        audit(actor=actor, action="mailbox.delete", obj=mailbox, before=snapshot(mailbox), client_ip=client_ip)
        logins_end(customer_ids=[mailbox.domain.customer_id])
        routes_changed()
        mailbox.delete()


def mailboxes_import_dovecot_usage() -> int:
    """Copy Dovecot's quota dict rows (username = the mailbox address) into Mailbox.used_*; returns rows matched."""
    by_domain: dict[str, dict[str, DovecotQuota]] = {}
    for row in DovecotQuota.objects.all():
        local, _, domain = row.username.lower().rpartition("@")
        by_domain.setdefault(domain, {})[local] = row
    now = timezone.now()
    changed, filled_or_freed = [], False
    for domain, rows in by_domain.items():
        for mailbox in (Mailbox.objects.filter(domain__name=domain, local_part__in=list(rows))
                        .only("pk", "local_part", "quota_mb", "used_bytes")):
            row = rows[mailbox.local_part]
            was_full = mailbox.is_full
            mailbox.used_bytes = max(row.bytes, 0)
            mailbox.used_messages = max(row.messages, 0)
            mailbox.usage_updated_at = now
            filled_or_freed |= mailbox.is_full != was_full
            changed.append(mailbox)
    with transaction.atomic():
        Mailbox.objects.bulk_update(changed, ["used_bytes", "used_messages", "usage_updated_at"], batch_size=500)
        if filled_or_freed:  # the MX refuses a full mailbox at RCPT (552 5.2.2)
            routes_changed()
    return len(changed)
