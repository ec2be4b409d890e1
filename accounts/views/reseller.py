"""The reseller console: its pool, its customers and their plans, its brand. Everything is scoped to the
signed-in admin's own reseller; another reseller's customer is a 404."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.charts import bar_chart
from accounts.forms.reseller import (BrandingForm, CustomerCreateForm, CustomerEditForm, PlanForm, ReasonForm,
                                     SuspendForm, TemplateChoiceForm)
from accounts.models import Customer, User
from accounts.selectors.reseller import customers_with_usage, pool_overview, sending_by_day
from accounts.services import suspension, tenants
from accounts.services.limits import PLAN_FIELDS, limit_set
from accounts.services.plan_templates import plan_of
from accounts.views.common import (_get_customer_for_user, add_refusals, client_ip, flash_outcome, role_required,
                                   submit)

PAGE_SIZES = (10, 25, 50)


def sending_chart(points) -> dict:
    """Daily sending as one bar per day, scaled to the busiest."""
    days = [{"day": day, "count": count} for day, count in points]
    return bar_chart(days, ("count",), width=560, height=120, margin=2, nice=False)


@role_required(User.Role.RESELLER)
def home(request):
    reseller = request.user.reseller
    return render(request, "accounts/reseller/home.html", {
        "reseller": reseller,
        "pool": pool_overview(reseller),
        "chart": sending_chart(sending_by_day(reseller)),
    })


@role_required(User.Role.RESELLER)
def customer_list(request):
    sort = request.GET.get("sort", "name")
    try:
        per_page = int(request.GET.get("per", 25))
    except ValueError:
        per_page = 25
    per_page = per_page if per_page in PAGE_SIZES else 25
    query = request.GET.get("q", "")[:150]
    qs = customers_with_usage(request.user.reseller, sort=sort, query=query)
    page = Paginator(qs, per_page).get_page(request.GET.get("page"))
    return render(request, "accounts/reseller/customers.html", {
        "page": page, "sort": sort, "per_page": per_page, "page_sizes": PAGE_SIZES, "query": query,
        "columns": [("name", _("Customer")), ("status", _("Status")), ("domains", _("Domains")),
                    ("mailboxes", _("Mailboxes")), ("storage", _("Storage (MB)")), ("sent", _("Sent 24 h"))],
    })


def _template_choice(request):
    """The plan template picked with ?template= (its limits fill in the plan form), and the chooser's form."""
    templates = request.user.reseller.plan_templates.all()
    chooser = TemplateChoiceForm(request.GET or None, templates=templates)
    chosen = chooser.cleaned_data["template"] if chooser.is_bound and chooser.is_valid() else None
    return chosen, chooser


@role_required(User.Role.RESELLER)
def customer_create(request):
    reseller = request.user.reseller
    chosen, chooser = _template_choice(request)
    defaults = {name: Customer._meta.get_field(name).get_default() for name in PLAN_FIELDS}
    form = CustomerCreateForm(request.POST or None, initial=PlanForm.initial_from(plan_of(chosen) if chosen
                                                                                   else defaults))
    customer = submit(request, form, lambda data: tenants.reseller_customer_create(
        actor=request.user, reseller=reseller, name=data["name"], username=data["username"], email=data["email"],
        password=data["password"], client_ip=client_ip(request), **form.plan()),
        failure=_("The customer was not created; see the errors below."))
    if customer is not None:
        messages.success(request, _("Customer %(name)s created; %(username)s can sign in now.")
                         % {"name": customer.name, "username": form.cleaned_data["username"]})
        return redirect("reseller:customer", pk=customer.pk)
    if form.is_bound and not form.is_valid():
        # The service's own refusals (a name or username taken, the pool) beside the form's, all at once.
        data = {**form.cleaned_data}
        problems = tenants.reseller_customer_errors(
            reseller=reseller, name=data.get("name", ""), username=data.get("username", ""),
            password=data.get("password", ""), email=data.get("email", ""), plan=form.plan())
        add_refusals(form, problems)
    return render(request, "accounts/reseller/customer_create.html", {
        "form": form, "pool": pool_overview(reseller), "chooser": chooser})


@role_required(User.Role.RESELLER)
def customer_detail(request, pk):
    customer = _get_customer_for_user(request, pk)
    chosen, chooser = _template_choice(request)
    form = PlanForm(request.POST or None, initial=PlanForm.initial_from(plan_of(chosen) if chosen else customer))
    saved = submit(request, form, lambda data: limit_set(
        actor=request.user, obj=customer, changes=form.plan(), client_ip=client_ip(request)),
        failure=_("The plan was not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("The plan of %(name)s is saved.") % {"name": customer.name})
        return redirect("reseller:customer", pk=customer.pk)
    return render(request, "accounts/reseller/customer.html", {
        "customer": customer, "form": form, "chooser": chooser, "chosen": chosen,
        "reason_form": ReasonForm() if suspension.is_suspended(customer) else SuspendForm(),
        "suspended": suspension.is_suspended(customer), "pool": pool_overview(request.user.reseller),
        "users": customer.users.filter(role=User.Role.CUSTOMER).order_by("username"),
    })


@role_required(User.Role.RESELLER)
def customer_edit(request, pk):
    customer = _get_customer_for_user(request, pk)
    form = CustomerEditForm(request.POST or None,
                            initial={"name": customer.name, "contact_email": customer.contact_email})
    saved = submit(request, form, lambda data: tenants.reseller_customer_update(
        actor=request.user, customer=customer, name=data["name"], contact_email=data["contact_email"],
        client_ip=client_ip(request)), failure=_("The customer was not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("%(name)s is saved.") % {"name": saved.name})
        return redirect("reseller:customer", pk=saved.pk)
    return render(request, "accounts/reseller/customer_edit.html", {"customer": customer, "form": form})


def _suspend_or_restore(request, pk, action):
    customer = _get_customer_for_user(request, pk)
    form = (SuspendForm if action is suspension.suspend else ReasonForm)(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason: it goes into the audit log."))
        return redirect("reseller:customer", pk=customer.pk)
    done = _("%(name)s is suspended.") if action is suspension.suspend else _("%(name)s is restored.")
    hold = {"hold": form.cleaned_data["hold"]} if action is suspension.suspend else {}
    flash_outcome(request, lambda: action(actor=request.user, obj=customer, reason=form.cleaned_data["reason"],
                                          client_ip=client_ip(request), **hold), done % {"name": customer.name})
    return redirect("reseller:customer", pk=customer.pk)


@require_POST
@role_required(User.Role.RESELLER)
def customer_suspend(request, pk):
    return _suspend_or_restore(request, pk, suspension.suspend)


@require_POST
@role_required(User.Role.RESELLER)
def customer_restore(request, pk):
    return _suspend_or_restore(request, pk, suspension.restore)


@role_required(User.Role.RESELLER)
def branding(request):
    reseller = request.user.reseller
    initial = {"panel_title": reseller.panel_title, "support_email": reseller.support_email,
               "help_url": reseller.help_url, "brand_color": reseller.brand_color, "panel_host": reseller.panel_host}
    form = BrandingForm(request.POST or None, request.FILES or None, initial=initial)
    saved = submit(request, form, lambda data: tenants.reseller_branding_update(
        actor=request.user, reseller=reseller, panel_title=data["panel_title"], support_email=data["support_email"],
        help_url=data["help_url"], logo=data["logo"], remove_logo=data["remove_logo"], brand_color=data["brand_color"],
        panel_host=data["panel_host"], client_ip=client_ip(request)),
        failure=_("The brand was not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("Your brand is saved; your customers see it on their next page."))
        return redirect("reseller:branding")
    return render(request, "accounts/reseller/branding.html", {"form": form, "reseller": reseller})
