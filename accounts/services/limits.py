"""Changing limits: who may change which, the pool and plan rules, and the audit entry.

Support staff change anything (with a reason). A reseller admin sets its customers' plans, and the sum it hands
out never exceeds its pool. A customer user splits its plan between its domains, mailboxes and credentials: no
level's limit above the level it sits in, storage allocated within the plan.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.utils.translation import gettext as _, gettext_lazy

from accounts.bounds import too_large
from accounts.models import Alias, Customer, Domain, Mailbox, Reseller, SmtpCredential, User
from accounts.selectors.reseller import POOL, pool_handed_out
from accounts.services.audit_log import audit

SENDING = ("send_per_hour", "send_per_day")
FIELDS: dict[type, tuple[str, ...]] = {
    Reseller: ("max_customers", "max_domains", "max_mailboxes", "max_storage_mb", *SENDING, "max_aliases"),
    Customer: ("max_domains", "max_mailboxes", "max_storage_mb", "max_message_size", "max_recipients", *SENDING,
               "max_aliases"),
    Domain: (*SENDING, "max_storage_mb"),
    Mailbox: (*SENDING, "quota_mb"),
    SmtpCredential: SENDING,
}
# A customer's plan: what a reseller sets when it creates a customer.
PLAN_FIELDS = FIELDS[Customer]
# Fields that may be empty: "no limit of its own at this level".
NULLABLE = {(Reseller, f) for f in SENDING} | {(Customer, f) for f in SENDING} | {
    (Domain, "send_per_hour"), (Domain, "send_per_day"), (Domain, "max_storage_mb"),
    (Mailbox, "send_per_hour"), (Mailbox, "send_per_day"),
    (SmtpCredential, "send_per_hour"), (SmtpCredential, "send_per_day"),
}
# What a number of each limit counts, as the messages below say it ("5 mailboxes").
LABELS = {
    "max_customers": gettext_lazy("customers"), "max_domains": gettext_lazy("domains"),
    "max_mailboxes": gettext_lazy("mailboxes"), "max_storage_mb": gettext_lazy("MB of storage"),
    "quota_mb": gettext_lazy("MB of storage"), "send_per_hour": gettext_lazy("recipients per hour"),
    "send_per_day": gettext_lazy("recipients per day"), "max_message_size": gettext_lazy("bytes per message"),
    "max_recipients": gettext_lazy("recipients per message"), "max_aliases": gettext_lazy("aliases"),
}


def _customer_of(obj) -> Customer | None:
    if isinstance(obj, Customer):
        return obj
    if isinstance(obj, Mailbox):
        return obj.domain.customer
    return getattr(obj, "customer", None)


def check_may_change(actor: User | None, obj, reason: str) -> None:
    """PermissionDenied unless the actor may change this object's limits; support must give a reason."""
    if actor is None:  # commands and tasks run as the system
        return
    if actor.is_support:
        if not (reason or "").strip():
            raise ValidationError({"reason": _("Give a reason for the change: it goes into the audit log.")})
        return
    if actor.role == User.Role.RESELLER and actor.reseller_id and isinstance(obj, Customer):
        if obj.reseller_id == actor.reseller_id:
            return
    if actor.role == User.Role.CUSTOMER and actor.customer_id and isinstance(obj, (Domain, Mailbox, SmtpCredential)):
        customer = _customer_of(obj)
        if customer is not None and customer.pk == actor.customer_id:
            return
    raise PermissionDenied(_("You may not change these limits."))


def clean_limits(model: type, changes: dict) -> dict:
    """The limit fields of a model as whole numbers (None where "no limit of its own" is allowed); ValidationError
    per field otherwise. The one validation of limits and plans, whoever sets them."""
    allowed = FIELDS[model]
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"cannot set {sorted(unknown)} of a {model.__name__}")
    cleaned, errors = {}, {}
    for field, value in changes.items():
        if value in ("", None):
            if (model, field) not in NULLABLE:
                errors[field] = _("Enter a number.")
                continue
            cleaned[field] = None
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            errors[field] = _("Enter a whole number.")
            continue
        if number < 0:
            errors[field] = _("Enter zero or more.")
            continue
        if error := too_large(model, field, number):
            errors[field] = error
            continue
        cleaned[field] = number
    if errors:
        raise ValidationError(errors)
    return cleaned


def _lock(obj):
    """The object's row, locked for the rest of the transaction, with the parents the rules read."""
    model = type(obj)
    qs = model.objects.select_for_update(of=("self",))
    if model is Mailbox:
        qs = qs.select_related("domain", "domain__customer")
    elif model in (Domain, SmtpCredential):
        qs = qs.select_related("customer")
    return qs.get(pk=obj.pk)


def _above(value, ceiling) -> bool:
    """A limit is above its parent's when the parent has one and this one is missing or larger."""
    return ceiling is not None and (value is None or value > ceiling)


def _fail(field: str, message: str):
    raise ValidationError({field: message})


# --- rules per level -------------------------------------------------------------------------------------------


def pool_left_message(field: str, left: int) -> str:
    return _("Your pool has %(left)s %(what)s left to hand out.") % {"left": max(left, 0), "what": LABELS[field]}


def check_pool(reseller: Reseller, plan: dict, *, customer: Customer | None, new_customer: bool = False) -> None:
    """The plan fits in the pool beside the other customers'. Call with the reseller row locked."""
    handed = pool_handed_out(reseller, exclude=customer)
    # "Left" counts what this customer already holds as handed out: the free part of the pool.
    held = {f: (getattr(customer, POOL[f]) or 0) if customer is not None else 0 for f in POOL}
    errors = {}  # every field over the pool at once
    if new_customer and handed["max_customers"] + 1 > reseller.max_customers:
        errors["name"] = pool_left_message("max_customers", reseller.max_customers - handed["max_customers"])
    for pool_field, plan_field in POOL.items():
        pool = getattr(reseller, pool_field)
        if pool is None:
            continue
        value = plan.get(plan_field)
        left = pool_left_message(pool_field, pool - handed[pool_field] - held[pool_field])
        if value is None:
            if pool_field in SENDING:
                errors[plan_field] = _("Your pool limits sending, so set a number. %(left)s") % {"left": left}
            continue
        if handed[pool_field] + value > pool:
            errors[plan_field] = left
    if errors:
        raise ValidationError(errors)


def _rules_reseller(reseller: Reseller, new: dict) -> None:
    handed = pool_handed_out(reseller)
    for field, value in new.items():
        if value is not None and value < handed[field]:
            if field == "max_customers":
                text = _("%(reseller)s has %(count)s %(what)s; the pool cannot be lower.")
            else:
                text = _("%(reseller)s has handed out %(count)s %(what)s; the pool cannot be lower.")
            _fail(field, text % {"reseller": reseller.name, "count": handed[field], "what": LABELS[field]})


def customer_use(customer: Customer) -> dict:
    """Counts and allocations the plan must stay above: one query each for domains and mailboxes."""
    dom = Domain.objects.filter(customer=customer).aggregate(
        n=Count("id"), hour=Max("send_per_hour"), day=Max("send_per_day"), storage=Sum("max_storage_mb"))
    box = Mailbox.objects.filter(domain__customer=customer).aggregate(
        n=Count("id"), quota=Sum("quota_mb"), hour=Max("send_per_hour"), day=Max("send_per_day"))
    return {
        "max_domains": dom["n"], "max_mailboxes": box["n"],
        "max_aliases": Alias.objects.filter(domain__customer=customer).count(),
        "max_storage_mb": max(box["quota"] or 0, dom["storage"] or 0),
        "send_per_hour": max(dom["hour"] or 0, box["hour"] or 0),
        "send_per_day": max(dom["day"] or 0, box["day"] or 0),
    }


def _rules_customer(customer: Customer, new: dict) -> None:
    use = customer_use(customer)
    for field in ("max_domains", "max_mailboxes", "max_storage_mb", "max_aliases"):
        if field in new and new[field] < use[field]:
            _fail(field, _("%(customer)s uses %(count)s %(what)s; the plan cannot be lower.")
                  % {"customer": customer.name, "count": use[field], "what": LABELS[field]})
    for field in SENDING:
        if new.get(field) is not None and new[field] < use[field]:
            _fail(field, _("A domain or mailbox of %(customer)s allows %(count)s %(what)s; lower that first.")
                  % {"customer": customer.name, "count": use[field], "what": LABELS[field]})
    if customer.reseller_id:
        reseller = Reseller.objects.select_for_update().get(pk=customer.reseller_id)
        plan = {f: getattr(customer, f) for f in POOL.values()} | new
        check_pool(reseller, {f: plan[f] for f in POOL.values()}, customer=customer)


def _rules_domain(domain: Domain, new: dict) -> None:
    customer = Customer.objects.select_for_update().get(pk=domain.customer_id)
    for field in SENDING:
        if field in new and _above(new[field], getattr(customer, field)):
            _fail(field, _("The plan allows %(count)s %(what)s; a domain cannot have more.")
                  % {"count": getattr(customer, field), "what": LABELS[field]})
        if new.get(field) is not None:
            top = Mailbox.objects.filter(domain=domain).aggregate(m=Max(field))["m"] or 0
            top = max(top, SmtpCredential.objects.filter(domain=domain).aggregate(m=Max(field))["m"] or 0)
            if new[field] < top:
                _fail(field, _("A mailbox or credential of %(domain)s allows %(count)s %(what)s; lower that first.")
                      % {"domain": domain.unicode_name, "count": top, "what": LABELS[field]})
    if new.get("max_storage_mb") is not None:
        value = new["max_storage_mb"]
        used = Mailbox.objects.filter(domain=domain).aggregate(s=Sum("quota_mb"))["s"] or 0
        if value < used:
            _fail("max_storage_mb", _("The mailboxes of %(domain)s hold %(used)s MB; the domain cannot have less.")
                  % {"domain": domain.unicode_name, "used": used})
        others = (Domain.objects.filter(customer=customer).exclude(pk=domain.pk)
                  .aggregate(s=Sum("max_storage_mb"))["s"] or 0)
        if others + value > customer.max_storage_mb:
            left = customer.max_storage_mb - others
            _fail("max_storage_mb", _("Your plan has %(left)s MB of storage left to allocate to domains.")
                  % {"left": max(left, 0)})


def _rules_mailbox(mailbox: Mailbox, new: dict) -> None:
    customer = Customer.objects.select_for_update().get(pk=mailbox.domain.customer_id)
    domain = mailbox.domain
    for field in SENDING:
        if field not in new:
            continue
        for level, text in ((customer, _("The plan allows %(count)s %(what)s; a mailbox cannot have more.")),
                            (domain, _("%(name)s allows %(count)s %(what)s; a mailbox cannot have more."))):
            if _above(new[field], getattr(level, field)):
                _fail(field, text % {"name": domain.unicode_name, "count": getattr(level, field),
                                     "what": LABELS[field]})
        if new[field] is not None:
            top = SmtpCredential.objects.filter(mailbox=mailbox).aggregate(m=Max(field))["m"] or 0
            if new[field] < top:
                _fail(field, _("A credential of %(address)s allows %(count)s %(what)s; lower that first.")
                      % {"address": mailbox.address, "count": top, "what": LABELS[field]})
    if "quota_mb" in new:
        value = new["quota_mb"]
        used_mb = -(-mailbox.used_bytes // (1024 * 1024))
        if value < used_mb:
            _fail("quota_mb", _("%(address)s already stores %(used)s MB; the quota cannot be lower.")
                  % {"address": mailbox.address, "used": used_mb})
        others = Mailbox.objects.filter(domain__customer=customer).exclude(pk=mailbox.pk)
        allocated = others.aggregate(s=Sum("quota_mb"))["s"] or 0
        if allocated + value > customer.max_storage_mb:
            _fail("quota_mb", _("Your plan has %(left)s MB of storage left to allocate.")
                  % {"left": max(customer.max_storage_mb - allocated, 0)})
        if domain.max_storage_mb is not None:
            in_domain = others.filter(domain=domain).aggregate(s=Sum("quota_mb"))["s"] or 0
            if in_domain + value > domain.max_storage_mb:
                left = domain.max_storage_mb - in_domain
                _fail("quota_mb", _("%(domain)s has %(left)s MB of storage left to allocate.")
                      % {"domain": domain.unicode_name, "left": max(left, 0)})


def _rules_credential(credential: SmtpCredential, new: dict) -> None:
    customer = Customer.objects.select_for_update().get(pk=credential.customer_id)
    levels = [(customer, _("The plan allows %(count)s %(what)s; a credential cannot have more."), ""),
              (credential.domain, _("%(name)s allows %(count)s %(what)s; a credential cannot have more."),
               credential.domain.unicode_name)]
    if credential.mailbox_id:
        levels.append((credential.mailbox, _("%(name)s allows %(count)s %(what)s; a credential cannot have more."),
                       credential.mailbox.address))
    for field in SENDING:
        if field not in new:
            continue
        for level, text, name in levels:
            if _above(new[field], getattr(level, field)):
                _fail(field, text % {"name": name, "count": getattr(level, field), "what": LABELS[field]})


RULES = {Reseller: _rules_reseller, Customer: _rules_customer, Domain: _rules_domain, Mailbox: _rules_mailbox,
         SmtpCredential: _rules_credential}


def limit_set(*, actor: User | None, obj, changes: dict, reason: str = "", client_ip: str | None = None):
    """Change limits of a reseller, customer, domain, mailbox or credential; returns the saved object.

    Raises PermissionDenied for a role that may not, ValidationError (per field, saying how much is left) when
    a rule is broken; nothing is written then.
    """
    model = type(obj)
    if model not in FIELDS:
        raise ValueError(f"limit_set does not know {model.__name__}")
    if actor is not None and not actor.is_support and model is Reseller:
        raise PermissionDenied(_("Only support staff change a reseller's pool."))
    check_may_change(actor, obj, reason)
    cleaned = clean_limits(model, changes)
    with transaction.atomic():
        # Parents first (reseller, then customer), then the object: the same order everywhere, so no deadlocks.
        customer = _customer_of(obj)
        if customer is not None and customer.reseller_id and model is Customer:
            Reseller.objects.select_for_update().get(pk=customer.reseller_id)
        if customer is not None and model is not Customer:
            Customer.objects.select_for_update().get(pk=customer.pk)
        current = _lock(obj)
        changed = {f: v for f, v in cleaned.items() if getattr(current, f) != v}
        if not changed:
            return current
        RULES[model](current, changed)
        before = {f: getattr(current, f) for f in changed}
        for field, value in changed.items():
            setattr(current, field, value)
        current.save(update_fields=list(changed))
        audit(actor=actor, action=f"{model.__name__.lower()}.limits", obj=current, before=before, after=changed,
              reason=reason, client_ip=client_ip)
    return current
