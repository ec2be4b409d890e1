"""Suspending and restoring resellers, customers, domains, mailboxes and SMTP credentials (support staff; resellers
within their own customers).

Nothing is deleted: a suspended object keeps its data and can be restored. A suspended customer cannot sign in
to the panel or to SMTP (the relay reads the status from the database at every AUTH, and its open sessions stop
at their next MAIL), and its queued mail is held by delivery until it is restored. Suspending with `hold` also
holds what a suspended mailbox, domain or credential queued (the compromised-login case) until support releases
or cancels it.
"""

from importlib import import_module

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.models import Customer, Domain, Mailbox, PanelSession, Reseller, SmtpCredential, Status, User
from accounts.services.audit_log import audit, snapshot
from accounts.services.logins import hold_queued, logins_end
from accounts.services.routes import routes_changed
from accounts.services.webhooks import event_record
from accounts.services.workers import notify_after_commit

Suspendable = Reseller | Customer | Domain | Mailbox | SmtpCredential

_VISIBLE = {
    Reseller: lambda actor: selectors.resellers_visible_to(actor) if actor.is_support else Reseller.objects.none(),
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
        raise ValidationError({"reason": _("Give a reason: it goes into the audit log.")})
    return reason


def is_suspended(obj: Suspendable) -> bool:
    if isinstance(obj, (Reseller, Customer, Domain)):
        return obj.status == Status.SUSPENDED
    return not obj.is_active


def _set_suspended(obj: Suspendable, suspended: bool, reason: str) -> list[str]:
    if isinstance(obj, (Reseller, Customer)):
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
            raise ValidationError({"reason": _("This credential was revoked; create a new one instead.")})
        obj.is_active = not suspended
        fields = ["is_active"]
    obj.status_reason = reason[:300] if suspended else ""
    return fields + ["status_reason"]


def _customers_of(obj: Suspendable) -> dict:
    if isinstance(obj, Reseller):
        return {"reseller_id": obj.pk}
    if isinstance(obj, Customer):
        return {"customer_ids": [obj.pk]}
    if isinstance(obj, Mailbox):
        return {"customer_ids": [obj.domain.customer_id]}
    return {"customer_ids": [obj.customer_id]}


def _change(*, actor: User | None, obj: Suspendable, suspended: bool, reason: str,
            client_ip: str | None, hold: bool = False) -> Suspendable:
    reason = _clean_reason(reason)
    _check_actor(actor, obj)
    model = type(obj)
    with transaction.atomic():
        obj = model.objects.select_for_update().get(pk=obj.pk)
        if is_suspended(obj) == suspended:
            already = _("%(kind)s %(name)s is already suspended.") if suspended else _(
                "%(kind)s %(name)s is already active.")
            raise ValidationError({"reason": already % {"kind": capfirst(model._meta.verbose_name), "name": obj}})
        before = snapshot(obj)
        obj.save(update_fields=_set_suspended(obj, suspended, reason))
        action = f"{model.__name__.lower()}.{'suspend' if suspended else 'restore'}"
        audit(actor=actor, action=action, obj=obj, before=before, after=snapshot(obj), reason=reason,
              client_ip=client_ip)
        suspension_event(obj, suspended=suspended, reason=reason)
        if not isinstance(obj, SmtpCredential):
            routes_changed()  # the MX refuses a suspended recipient at once, and takes a restored one back
        if suspended:
            logins_end(**_customers_of(obj))
            if hold:
                hold_queued(obj=obj, reason=f"{model._meta.verbose_name} {obj} suspended: {reason}")
        if suspended and isinstance(obj, (Reseller, Customer, Mailbox)):
            users = {Reseller: lambda: User.objects.filter(reseller=obj) | User.objects.filter(customer__reseller=obj),
                     Customer: lambda: User.objects.filter(customer=obj),
                     Mailbox: lambda: User.objects.filter(mailbox=obj)}[model]()
            end_sessions(list(PanelSession.objects.filter(user__in=users).values_list("session_key", flat=True)))
        if not suspended and isinstance(obj, (Reseller, Customer)):
            customer_ids = [obj.pk] if isinstance(obj, Customer) else list(obj.customers.values_list("pk", flat=True))
            # Delivery holds a suspended customer's mail at claim time; this sends the held messages on.
            for customer_id in customer_ids:
                notify_after_commit("relay.tasks.release_held", args=[customer_id])
    return obj


def _subject(obj: Suspendable) -> tuple[str, int, dict]:
    """(event type prefix, customer id, what the payload says about it) of an object whose events webhooks send."""
    if isinstance(obj, Customer):
        return "customer", obj.pk, {"id": obj.pk, "name": obj.name, "external_id": obj.external_id}
    if isinstance(obj, Domain):
        return "domain", obj.customer_id, {"id": obj.pk, "name": obj.name, "unicode_name": obj.unicode_name}
    if isinstance(obj, Mailbox):
        return "mailbox", obj.domain.customer_id, {"id": obj.pk, "address": obj.address}
    return "credential", obj.customer_id, {"id": obj.pk, "username": obj.username}


def suspension_event(obj: Suspendable, *, suspended: bool, reason: str) -> None:
    """The webhook event of a customer, domain, mailbox or credential suspended or restored, in the caller's
    transaction (a reseller's own suspension has no event: its customers' endpoints hear their own changes)."""
    if isinstance(obj, Reseller):
        return
    name, customer_id, about = _subject(obj)
    event_record(type=f"{name}.{'suspended' if suspended else 'restored'}", customer_id=customer_id,
                 payload={name: about, "reason": reason})


def suspend(*, actor: User | None, obj: Suspendable, reason: str, client_ip: str | None = None,
            hold: bool = False) -> Suspendable:
    """`hold`: also hold what it queued and has not delivered yet (a login that may have leaked)."""
    return _change(actor=actor, obj=obj, suspended=True, reason=reason, client_ip=client_ip, hold=hold)


def restore(*, actor: User | None, obj: Suspendable, reason: str, client_ip: str | None = None) -> Suspendable:
    return _change(actor=actor, obj=obj, suspended=False, reason=reason, client_ip=client_ip)


def end_sessions(session_keys: list[str]) -> None:
    """Sign the given browser sessions out at once (the session store entry and its listing both go)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    for key in session_keys:
        store(session_key=key).delete()
    PanelSession.objects.filter(session_key__in=session_keys).delete()
