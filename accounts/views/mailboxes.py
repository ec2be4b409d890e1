"""Mailboxes: list, create, edit (quota, SMTP access, enabled), password, SMTP switch, delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors
from accounts.forms.mailboxes import MailboxCreateForm, MailboxEditForm, MailboxPasswordForm
from accounts.models import User
from accounts.normalize import domain_search_term
from accounts.services import mailboxes
from accounts.views.common import (_get_domain_for_user, _get_mailbox_for_user, client_ip, customer_in_context,
                                   paginate, submit)


@login_required
def mailbox_list(request):
    visible = selectors.mailboxes_managed_by(request.user)
    customer = None
    if request.user.role != User.Role.CUSTOMER and request.GET.get("customer"):
        customer = customer_in_context(request)
        visible = visible.filter(domain__customer=customer)
    q = request.GET.get("q", "").strip()
    if q:
        local, _, domain = q.partition("@")
        visible = visible.filter(local_part__icontains=local.lower(),
                                 domain__name__icontains=domain_search_term(domain))
    # Where to create one: the customer's own domains (staff create from a domain's page).
    domains = selectors.domains_visible_to(request.user) if request.user.role == User.Role.CUSTOMER else []
    return render(request, "accounts/mailboxes/list.html", {"page": paginate(request, visible), "domains": domains,
                                                            "q": q, "customer": customer})


@login_required
def mailbox_add(request, domain_pk):
    domain = _get_domain_for_user(request, domain_pk)
    form = MailboxCreateForm(request.POST or None, domain=domain)
    mailbox = submit(request, form, lambda data: mailboxes.mailbox_create(
        actor=request.user, domain=domain, local_part=data["local_part"], password=data["password"],
        quota_mb=data["quota_mb"], smtp_enabled=data["smtp_enabled"], display_name=data["display_name"],
        client_ip=client_ip(request)), failure=_("The mailbox was not created; see the errors below."))
    if mailbox is not None:
        messages.success(request, _("Mailbox %(address)s was created.") % {"address": mailbox.unicode_address})
        return redirect("mailbox_edit", pk=mailbox.pk)
    return render(request, "accounts/mailboxes/add.html", {"form": form, "domain": domain})


@login_required
def mailbox_edit(request, pk):
    mailbox = _get_mailbox_for_user(request, pk)
    initial = {f: getattr(mailbox, f) for f in ("display_name", "quota_mb", "is_active")}
    form = MailboxEditForm(request.POST or None, initial=initial)

    def save(data):
        changes = {k: v for k, v in data.items() if v != initial[k]}
        if changes:
            mailboxes.mailbox_update(actor=request.user, mailbox=mailbox, client_ip=client_ip(request), **changes)
        return changes

    changes = submit(request, form, save, failure=_("The mailbox was not saved; see the errors below."))
    if changes is not None:
        messages.success(request, _("%(name)s was saved.") % {"name": mailbox.unicode_address} if changes
                         else _("Nothing was changed."))
        return redirect("mailbox_edit", pk=mailbox.pk)
    credentials = selectors.credentials_visible_to(request.user).filter(mailbox=mailbox, revoked_at__isnull=True)
    return render(request, "accounts/mailboxes/edit.html", {"form": form, "mailbox": mailbox,
                                                            "credentials": credentials})


@login_required
def mailbox_password(request, pk):
    mailbox = _get_mailbox_for_user(request, pk)
    form = MailboxPasswordForm(request.POST or None, mailbox=mailbox)
    if _set_password(request, form, mailbox):
        messages.success(request, _("The password of %(address)s was changed.") % {"address": mailbox.unicode_address})
        return redirect("mailbox_edit", pk=mailbox.pk)
    return render(request, "accounts/mailboxes/password.html", {"form": form, "mailbox": mailbox})


def _set_password(request, form, mailbox) -> bool:
    def change(data):
        mailboxes.mailbox_set_password(actor=request.user, mailbox=mailbox, password=data["password"],
                                      client_ip=client_ip(request))
        return True

    return bool(submit(request, form, change, failure=_("The password was not changed; see the errors below.")))


@login_required
@require_POST
def mailbox_smtp(request, pk):
    """Switch SMTP access on (enabled=1) or off (enabled=0)."""
    mailbox = _get_mailbox_for_user(request, pk)
    enabled = request.POST.get("enabled") == "1"
    if enabled != mailbox.smtp_enabled:
        mailbox = mailboxes.mailbox_update(actor=request.user, mailbox=mailbox, smtp_enabled=enabled,
                                          client_ip=client_ip(request))
    names = {"address": mailbox.unicode_address, "domain": mailbox.domain.unicode_name}
    if enabled and not mailbox.domain.can_send:
        if mailbox.domain.is_verified:
            text = _("SMTP access is on, but the relay refuses mail from %(address)s until %(domain)s is active again.")
        else:
            text = _("SMTP access is on, but the relay refuses mail from %(address)s until %(domain)s is verified.")
        messages.warning(request, text % names)
    elif enabled:
        messages.success(request, _("SMTP access is on: %(address)s can now send with its address and password.")
                         % names)
    else:
        messages.success(request, _("SMTP access is off for %(address)s.") % names)
    if request.htmx:
        return render(request, "accounts/mailboxes/_smtp.html", {"mailbox": mailbox})
    return redirect("mailbox_edit", pk=mailbox.pk)


@login_required
def mailbox_delete(request, pk):
    mailbox = _get_mailbox_for_user(request, pk)
    if request.method == "POST":
        address, domain_pk = mailbox.unicode_address, mailbox.domain_id
        mailboxes.mailbox_delete(actor=request.user, mailbox=mailbox, client_ip=client_ip(request))
        messages.success(request, _("Mailbox %(address)s was deleted.") % {"address": address})
        return redirect("domain_detail", pk=domain_pk)
    return render(request, "accounts/mailboxes/delete.html", {"mailbox": mailbox})
