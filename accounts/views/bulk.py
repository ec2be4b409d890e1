"""CSV import and export of a customer's domains, mailboxes and aliases: customers their own, reseller admins and
support staff a customer's they may manage (?customer=). A preview (dry run) shows what would change."""

import re

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _, ngettext

from accounts.forms.bulk import BulkImportForm
from accounts.models import User
from accounts.selectors.bulk import export_csv, passwords_csv
from accounts.services.bulk import COLUMNS, bulk_import
from accounts.views.common import client_ip, customer_in_context, role_required, submit

ROLES = (User.Role.SUPPORT, User.Role.RESELLER, User.Role.CUSTOMER)


@role_required(*ROLES)
def bulk_page(request):
    customer = customer_in_context(request)
    form = BulkImportForm(request.POST or None, request.FILES or None)
    preview = "preview" in request.POST
    result = submit(request, form, lambda data: bulk_import(
        actor=request.user, customer=customer, kind=data["kind"], text=data["text"], dry_run=preview,
        client_ip=client_ip(request)), failure=_("Nothing was imported; see the errors below."))
    if result is not None and result.errors:
        count = len(result.errors)
        messages.error(request, ngettext("Nothing was imported: %(count)s row to fix first.",
                                         "Nothing was imported: %(count)s rows to fix first.", count)
                       % {"count": count})
    elif result is not None and result.written:
        messages.success(request, _("Imported: %(created)s created, %(changed)s changed, %(unchanged)s unchanged.") % {
            "created": result.count("create"), "changed": result.count("update"),
            "unchanged": result.count("unchanged")})
    return render(request, "accounts/bulk/page.html", {
        "customer": customer, "form": form, "result": result, "columns": COLUMNS,
        "text": form.cleaned_data.get("text", "") if form.is_bound and hasattr(form, "cleaned_data") else "",
        "passwords_csv": passwords_csv(result.passwords) if result is not None and result.passwords else "",
        "staff": request.user.role != User.Role.CUSTOMER,
    })


@role_required(*ROLES)
def bulk_export(request, kind):
    if kind not in COLUMNS:
        raise Http404("No such export")
    customer = customer_in_context(request)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", customer.name).strip("-") or "customer"
    response = HttpResponse(export_csv(kind=kind, customer=customer), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{kind}.csv"'
    return response
