"""The audit log: who changed what, when and from where; support sees all, others their own tenants'."""

from datetime import datetime, time

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from accounts import selectors
from accounts.audit_words import row_for
from accounts.forms.audit import AuditFilterForm
from accounts.models import User
from accounts.views.common import role_required

PAGE_SIZE = 50


def _day(value, end: bool):
    return timezone.make_aware(datetime.combine(value, time.max if end else time.min))


def filter_audit(qs, data: dict):
    if data.get("actor"):
        qs = qs.filter(actor_label__iexact=data["actor"].strip())
    if data.get("object_type"):
        qs = qs.filter(object_type=data["object_type"])
    if data.get("object_id"):
        qs = qs.filter(object_id=data["object_id"].strip())
    if data.get("customer"):
        qs = qs.filter(customer_id=data["customer"])
    if data.get("action"):
        action = data["action"].strip()
        qs = qs.filter(action=action) if "." in action else qs.filter(action__contains=action)
    if data.get("date_from"):
        qs = qs.filter(created_at__gte=_day(data["date_from"], end=False))
    if data.get("date_to"):
        qs = qs.filter(created_at__lte=_day(data["date_to"], end=True))
    return qs


@role_required(User.Role.SUPPORT, User.Role.RESELLER, User.Role.CUSTOMER)
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    qs = selectors.audit_visible_to(request.user).select_related("customer")
    if form.is_bound and form.is_valid():
        qs = filter_audit(qs, form.cleaned_data)
    elif form.is_bound:
        qs = qs.none()
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    rows = [row_for(entry, request.user) for entry in page]
    return render(request, "accounts/security/audit.html", {"form": form, "page": page, "rows": rows,
                                                           "query": query.urlencode()})
