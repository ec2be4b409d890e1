"""The audit log's writer: who did what to which object, before and after, when, from which address."""

from datetime import datetime

from django.forms.models import model_to_dict

from accounts.models import AuditEntry, Customer, Mailbox, Reseller, User

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
