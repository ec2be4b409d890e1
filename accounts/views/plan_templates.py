"""A reseller's plan templates: list, create, change, delete. Another reseller's template is a 404."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from accounts.forms.reseller import PlanForm, PlanTemplateForm
from accounts.models import Customer, PlanTemplate, User
from accounts.services import plan_templates
from accounts.services.limits import PLAN_FIELDS
from accounts.views.common import add_refusals, client_ip, flash_outcome, role_required, submit


def _get_template_for_user(request, pk) -> PlanTemplate:
    return get_object_or_404(PlanTemplate.objects.filter(reseller_id=request.user.reseller_id), pk=pk)


@role_required(User.Role.RESELLER)
def template_list(request):
    return render(request, "accounts/reseller/plan_templates.html",
                  {"templates": request.user.reseller.plan_templates.all()})


@role_required(User.Role.RESELLER)
def template_edit(request, pk=None):
    template = _get_template_for_user(request, pk) if pk is not None else None
    source = template or {name: Customer._meta.get_field(name).get_default() for name in PLAN_FIELDS}
    initial = PlanForm.initial_from(source) | {"name": template.name if template else ""}
    form = PlanTemplateForm(request.POST or None, initial=initial)
    saved = submit(request, form, lambda data: plan_templates.plan_template_save(
        actor=request.user, reseller=request.user.reseller, name=data["name"], plan=form.plan(), template=template,
        client_ip=client_ip(request)), failure=_("The plan template was not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("Plan template %(name)s is saved.") % {"name": saved.name})
        return redirect("reseller:plan_templates")
    if form.is_bound and not form.is_valid():
        add_refusals(form, plan_templates.plan_template_errors(
            reseller=request.user.reseller, name=form.cleaned_data.get("name", ""), plan=form.plan(),
            template=template))
    return render(request, "accounts/reseller/plan_template_edit.html", {"form": form, "template": template})


@role_required(User.Role.RESELLER)
def template_delete(request, pk):
    template = _get_template_for_user(request, pk)
    if request.method == "POST":
        flash_outcome(request, lambda: plan_templates.plan_template_delete(
            actor=request.user, template=template, client_ip=client_ip(request)),
            _("Plan template %(name)s is deleted; customers keep the limits it gave them.") % {"name": template.name})
        return redirect("reseller:plan_templates")
    return render(request, "accounts/reseller/plan_template_delete.html", {"template": template})
