"""The customer's plan page: its domains and mailboxes with their own sending limits and storage, split within
the plan, and bars showing what is left."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from accounts import selectors_reseller
from accounts.forms_reseller import DomainLimitsForm, MailboxLimitsForm
from accounts.limits import limit_set
from accounts.models import User
from accounts.views_common import _get_domain_for_user, _get_mailbox_for_user, client_ip, submit


def customer_user_required(view):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.role != User.Role.CUSTOMER or not request.user.customer_id:
            raise PermissionDenied("The plan page is for a customer's users.")
        return view(request, *args, **kwargs)

    return wrapper


def _with_left(item: dict) -> dict:
    limit = item["limit"]
    return item | {"left": None if limit is None else max(limit - item["used"], 0)}


@customer_user_required
def plan(request):
    context = selectors_reseller.customer_plan(request.user.customer)
    context["usage"] = {key: _with_left(item) for key, item in context["usage"].items()}
    return render(request, "plan/plan.html", context)


def _edit_limits(request, obj, form_class, fields, label):
    form = form_class(request.POST or None, initial={f: getattr(obj, f) for f in fields})
    saved = submit(request, form, lambda data: limit_set(actor=request.user, obj=obj, changes=data,
                                                         client_ip=client_ip(request)) or True,
                   failure=f"The limits of {label} were not saved.")
    if saved:
        messages.success(request, f"The limits of {label} are saved.")
        return redirect("plan:home")
    return render(request, "plan/limits.html", {"form": form, "label": label, "customer": request.user.customer})


@customer_user_required
def domain_limits(request, pk):
    domain = _get_domain_for_user(request, pk)
    return _edit_limits(request, domain, DomainLimitsForm, DomainLimitsForm.base_fields, domain.unicode_name)


@customer_user_required
def mailbox_limits(request, pk):
    mailbox = _get_mailbox_for_user(request, pk)
    return _edit_limits(request, mailbox, MailboxLimitsForm, MailboxLimitsForm.base_fields, mailbox.unicode_address)
