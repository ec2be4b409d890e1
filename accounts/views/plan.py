"""The customer's plan page: its domains and mailboxes with their own sending limits and storage, split within
the plan, and bars showing what is left."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts.forms.plan import DomainLimitsForm, MailboxLimitsForm
from accounts.models import User
from accounts.selectors.plan import customer_plan
from accounts.services.limits import limit_set
from accounts.views.common import _get_domain_for_user, _get_mailbox_for_user, client_ip, role_required, submit


def _with_left(item: dict) -> dict:
    limit = item["limit"]
    return item | {"left": None if limit is None else max(limit - item["used"], 0)}


@role_required(User.Role.CUSTOMER)
def plan(request):
    context = customer_plan(request.user.customer)
    context["usage"] = {key: _with_left(item) for key, item in context["usage"].items()}
    return render(request, "accounts/plan/plan.html", context)


def _edit_limits(request, obj, form_class, fields, label):
    form = form_class(request.POST or None, initial={f: getattr(obj, f) for f in fields})
    saved = submit(request, form, lambda data: limit_set(actor=request.user, obj=obj, changes=data,
                                                         client_ip=client_ip(request)) or True,
                   failure=_("The limits of %(name)s were not saved.") % {"name": label})
    if saved:
        messages.success(request, _("The limits of %(name)s are saved.") % {"name": label})
        return redirect("plan:home")
    return render(request, "accounts/plan/limits.html", {"form": form, "label": label, "customer": request.user.customer})


@role_required(User.Role.CUSTOMER)
def domain_limits(request, pk):
    domain = _get_domain_for_user(request, pk)
    return _edit_limits(request, domain, DomainLimitsForm, DomainLimitsForm.base_fields, domain.unicode_name)


@role_required(User.Role.CUSTOMER)
def mailbox_limits(request, pk):
    mailbox = _get_mailbox_for_user(request, pk)
    return _edit_limits(request, mailbox, MailboxLimitsForm, MailboxLimitsForm.base_fields, mailbox.unicode_address)
