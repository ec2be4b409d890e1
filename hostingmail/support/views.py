"""Support console: search, a customer's page, limits and suspensions (support staff with two-factor only)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import selectors
from accounts.models import Customer, Mailbox, User
from accounts.services import limits, suspension
from accounts.views.common import client_ip, role_required, submit
from hostingmail.support import search as support_search
from hostingmail.support.forms import LimitsForm, ReasonForm, SearchForm, SuspendForm
from hostingmail.support.selectors import customer_page

VISIBLE = {
    "customer": selectors.customers_visible_to,
    "domain": selectors.domains_visible_to,
    "mailbox": selectors.mailboxes_visible_to,
    "credential": selectors.credentials_visible_to,
}
# What a page calls each kind of object ("Limits of domain alpha.test"); the URL's kind stays the key.
KIND_LABELS = {"customer": gettext_lazy("customer"), "domain": gettext_lazy("domain"),
               "mailbox": gettext_lazy("mailbox"), "credential": gettext_lazy("credential")}
# The search's sections, in the order the page shows them.
SECTION_LABELS = {"customers": gettext_lazy("Customers"), "domains": gettext_lazy("Domains"),
                  "mailboxes": gettext_lazy("Mailboxes"), "aliases": gettext_lazy("Aliases"),
                  "credentials": gettext_lazy("Credentials"), "messages": gettext_lazy("Messages")}


def _get_object_for_user(request, kind: str, pk: int):
    return get_object_or_404(VISIBLE[kind](request.user), pk=pk)


def _customer_id(obj) -> int:
    if isinstance(obj, Customer):
        return obj.pk
    if isinstance(obj, Mailbox):
        return obj.domain.customer_id
    return obj.customer_id


@role_required(User.Role.SUPPORT, verified=True)
def home(request):
    form = SearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    results = support_search.search(request.user, query)
    return render(request, "support/search.html", {
        "form": form, "query": query, "results": results, "found": sum(len(hits) for hits in results.values()),
        "sections": [(kind, SECTION_LABELS[kind], hits) for kind, hits in results.items()],
    })


@role_required(User.Role.SUPPORT, verified=True)
def customer(request, pk):
    obj = _get_object_for_user(request, "customer", pk)
    return render(request, "support/customer.html", customer_page(request.user, obj))


@role_required(User.Role.SUPPORT, verified=True)
def limits_edit(request, pk, kind):
    obj = _get_object_for_user(request, kind, pk)
    form = LimitsForm(request.POST or None, obj=obj)
    saved = submit(request, form, lambda data: limits.limit_set(
        actor=request.user, obj=obj, changes=form.changes(), reason=data["reason"], client_ip=client_ip(request),
    ) or True, failure=_("The limits of %(name)s were not saved.") % {"name": obj})
    if saved:
        messages.success(request, _("Limits of %(name)s saved; the relay applies them from the next message.")
                         % {"name": obj})
        return redirect("support:customer", _customer_id(obj))
    return render(request, "support/limits.html", {"form": form, "obj": obj, "kind": kind,
                                                   "kind_label": KIND_LABELS[kind], "customer_id": _customer_id(obj)})


@role_required(User.Role.SUPPORT, verified=True)
def status_edit(request, pk, kind):
    obj = _get_object_for_user(request, kind, pk)
    suspended = suspension.is_suspended(obj)
    form = (ReasonForm if suspended else SuspendForm)(request.POST or None)

    def change(data):
        if suspended:
            return suspension.restore(actor=request.user, obj=obj, reason=data["reason"], client_ip=client_ip(request))
        return suspension.suspend(actor=request.user, obj=obj, reason=data["reason"], client_ip=client_ip(request),
                                  hold=data["hold"])

    failure = _("%(name)s was not restored.") if suspended else _("%(name)s was not suspended.")
    done = submit(request, form, lambda data: change(data) or True, failure=failure % {"name": obj})
    if done:
        success = _("%(name)s is restored.") if suspended else _("%(name)s is suspended.")
        messages.success(request, success % {"name": obj})
        return redirect("support:customer", _customer_id(obj))
    return render(request, "support/status.html", {"form": form, "obj": obj, "kind": kind, "suspended": suspended,
                                                   "kind_label": KIND_LABELS[kind], "customer_id": _customer_id(obj)})
