"""Plan templates: named sets of customer limits a reseller reuses when it creates or changes customers. A template
is only numbers; applying it goes through the customer's own services (the pool rules, the audit log)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Customer, PlanTemplate, Reseller, User
from accounts.services.audit_log import audit, snapshot
from accounts.services.limits import PLAN_FIELDS, clean_limits
from accounts.services.tenants import check_reseller_admin


def plan_of(template: PlanTemplate) -> dict:
    return {field: getattr(template, field) for field in PLAN_FIELDS}


def plan_template_errors(*, reseller: Reseller, name: str, plan: dict, template: PlanTemplate | None = None) -> dict:
    """Every reason the template would be refused, by field, all at once. Reads only."""
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = [_("Enter a name.")]
    elif len(name) > 100:
        errors["name"] = [_("Use at most 100 characters.")]
    else:
        taken = PlanTemplate.objects.filter(reseller=reseller, name__iexact=name)
        if template is not None:
            taken = taken.exclude(pk=template.pk)
        if taken.exists():
            errors["name"] = [_("You have a template named “%(name)s” already.") % {"name": name}]
    try:
        clean_limits(Customer, plan)  # a template's limits are a customer's: one validation
    except ValidationError as exc:
        errors |= exc.message_dict
    return errors


def plan_template_save(*, actor: User | None, reseller: Reseller, name: str, plan: dict,
                       template: PlanTemplate | None = None, client_ip: str | None = None) -> PlanTemplate:
    """Create a template (template=None) or change one; every error at once, nothing written then."""
    check_reseller_admin(actor, reseller)
    if template is not None and template.reseller_id != reseller.pk:
        raise ValidationError(_("This template belongs to another reseller."))
    with transaction.atomic():
        Reseller.objects.select_for_update().get(pk=reseller.pk)  # two saves of one name queue here
        errors = plan_template_errors(reseller=reseller, name=name, plan=plan, template=template)
        if errors:
            raise ValidationError(errors)
        name, cleaned = name.strip(), clean_limits(Customer, plan)
        if template is None:
            template = PlanTemplate.objects.create(reseller=reseller, name=name, **cleaned)
            audit(actor=actor, action="plantemplate.create", obj=template, after=snapshot(template),
                  client_ip=client_ip)
            return template
        template = PlanTemplate.objects.select_for_update().get(pk=template.pk)
        before = snapshot(template)
        template.name = name
        for field, value in cleaned.items():
            setattr(template, field, value)
        template.save()
        audit(actor=actor, action="plantemplate.update", obj=template, before=before, after=snapshot(template),
              client_ip=client_ip)
    return template


def plan_template_delete(*, actor: User | None, template: PlanTemplate, client_ip: str | None = None) -> None:
    check_reseller_admin(actor, template.reseller)
    with transaction.atomic():
        audit(actor=actor, action="plantemplate.delete", obj=template, before=snapshot(template), client_ip=client_ip)
        template.delete()

