"""Suspending and restoring customers, domains, mailboxes and SMTP credentials (support staff and resellers).

Nothing is deleted: a suspended object keeps its data and can be restored. A suspended customer cannot sign in
to the panel or to SMTP (the relay reads the status from the database at every AUTH), and its queued mail is
held by delivery until it is restored.
"""

from importlib import import_module

from celery import current_app
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts import selectors
from accounts.models import Customer, Domain, Mailbox, PanelSession, SmtpCredential, Status, User
from accounts.services.audit_log import audit, snapshot

Suspendable = Customer | Domain | Mailbox | SmtpCredential

_VISIBLE = {
    Customer: selectors.customers_visible_to,
    Domain: selectors.domains_visible_to,
    Mailbox: selectors.mailboxes_visible_to,
    SmtpCredential: selectors.credentials_visible_to,
}


def _check_actor(actor: User | None, obj: Suspendable) -> None:
    # Commands and tasks act as the provider (actor None); people act only within what they administer.
    if actor is None:
        return
    if actor.role not in (User.Role.SUPPORT, User.Role.RESELLER):
        raise PermissionDenied("Only support staff and resellers suspend or restore accounts.")
    if not _VISIBLE[type(obj)](actor).filter(pk=obj.pk).exists():
        raise PermissionDenied("Not yours to suspend or restore.")


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Give a reason: it goes into the audit log."})
    return reason


def is_suspended(obj: Suspendable) -> bool:
    if isinstance(obj, (Customer, Domain)):
        return obj.status == Status.SUSPENDED
    return not obj.is_active


def _set_suspended(obj: Suspendable, suspended: bool, reason: str) -> list[str]:
    if isinstance(obj, Customer):
        obj.status = Status.SUSPENDED if suspended else Status.ACTIVE
        fields = ["status"]
    elif isinstance(obj, Domain):
        if suspended:
            obj.status = Domain.DomainStatus.SUSPENDED
        else:
            obj.status = Domain.DomainStatus.ACTIVE if obj.is_verified else Domain.DomainStatus.PENDING
        fields = ["status"]
    else:
        if not suspended and isinstance(obj, SmtpCredential) and obj.revoked_at is not None:
            raise ValidationError({"reason": "This credential was revoked; create a new one instead."})
        obj.is_active = not suspended
        fields = ["is_active"]
    obj.status_reason = reason[:300] if suspended else ""
    return fields + ["status_reason"]


def _change(*, actor: User | None, obj: Suspendable, suspended: bool, reason: str,
            client_ip: str | None) -> Suspendable:
    reason = _clean_reason(reason)
    _check_actor(actor, obj)
    model = type(obj)
    with transaction.atomic():
        obj = model.objects.select_for_update().get(pk=obj.pk)
        if is_suspended(obj) == suspended:
            state = "suspended" if suspended else "active"
            raise ValidationError({"reason": f"{model._meta.verbose_name.capitalize()} {obj} is already {state}."})
        before = snapshot(obj)
        obj.save(update_fields=_set_suspended(obj, suspended, reason))
        action = f"{model.__name__.lower()}.{'suspend' if suspended else 'restore'}"
        audit(actor=actor, action=action, obj=obj, before=before, after=snapshot(obj), reason=reason,
              client_ip=client_ip)
        if suspended and isinstance(obj, (Customer, Mailbox)):
            users = User.objects.filter(customer=obj) if isinstance(obj, Customer) else User.objects.filter(mailbox=obj)
            end_sessions(list(PanelSession.objects.filter(user__in=users).values_list("session_key", flat=True)))
        if not suspended and isinstance(obj, Customer):
            customer_id = obj.pk
            # Delivery holds a suspended customer's mail at claim time; this sends the held messages on.
            transaction.on_commit(lambda: current_app.send_task("relay.tasks.release_held", args=[customer_id]))
    return obj


def suspend(*, actor: User | None, obj: Suspendable, reason: str, client_ip: str | None = None) -> Suspendable:
    return _change(actor=actor, obj=obj, suspended=True, reason=reason, client_ip=client_ip)


def restore(*, actor: User | None, obj: Suspendable, reason: str, client_ip: str | None = None) -> Suspendable:
    return _change(actor=actor, obj=obj, suspended=False, reason=reason, client_ip=client_ip)


def end_sessions(session_keys: list[str]) -> None:
    """Sign the given browser sessions out at once (the session store entry and its listing both go)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    for key in session_keys:
        store(session_key=key).delete()
    PanelSession.objects.filter(session_key__in=session_keys).delete()
