"""A mailbox's filters (Sieve), automatic replies of mailboxes and aliases, and a domain's greylisting."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.forms.filters import AutoReplyForm, FilterForm, GreylistingForm
from accounts.models import AutoReply, SieveScript, User
from accounts.services import domains, filters
from accounts.views.common import _get_alias_for_user, _get_domain_for_user, _get_mailbox_for_user, client_ip, submit


@login_required
def mailbox_filters(request, pk):
    mailbox = _get_mailbox_for_user(request, pk, manage=False)  # its owner sets its own filters
    current = SieveScript.objects.filter(mailbox=mailbox).first()
    form = FilterForm(request.POST or None, rules=current.rules if current else [], initial={
        "mode": current.mode if current else SieveScript.Mode.RULES, "script": current.script if current else ""})
    saved = submit(request, form, lambda data: filters.sieve_script_save(
        actor=request.user, mailbox=mailbox, mode=data["mode"], rules=data["rules"], script=data["script"],
        client_ip=client_ip(request)), failure=_("The filters were not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("The filters of %(address)s are saved; they apply to the next message that "
                                    "arrives.") % {"address": mailbox.unicode_address})
        return redirect("mailbox_filters", pk=mailbox.pk)
    return render(request, "accounts/filters/filters.html", {"form": form, "mailbox": mailbox, "current": current,
                                                             "back": _mailbox_page(request, mailbox)})


def _mailbox_page(request, mailbox) -> str:
    return reverse("dashboard") if request.user.role == User.Role.MAILBOX else reverse("mailbox_edit", args=[mailbox.pk])


def _auto_reply_page(request, owner, *, back: str):
    current = AutoReply.objects.filter(**{type(owner).__name__.lower(): owner}).first()
    fields = ("enabled", "subject", "body", "starts_on", "ends_on", "interval_days")
    form = AutoReplyForm(request.POST or None, initial={f: getattr(current, f) for f in fields} if current else None)
    saved = submit(request, form, lambda data: filters.auto_reply_save(
        actor=request.user, owner=owner, client_ip=client_ip(request), **data),
        failure=_("The automatic reply was not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("The automatic reply of %(address)s is saved: %(state)s.")
                         % {"address": owner.unicode_address, "state": _state(saved)})
        return redirect(request.path)
    return render(request, "accounts/filters/auto_reply.html", {"form": form, "owner": owner, "back": back,
                                                                "current": current})


def _state(reply: AutoReply) -> str:
    today = timezone.localdate()
    if not reply.enabled:
        return _("off")
    if reply.ends_on and reply.ends_on < today:
        return _("on, but its last day has passed, so nothing will be sent")
    if reply.starts_on and reply.starts_on > today:
        return _("on from %(date)s") % {"date": f"{reply.starts_on:%Y-%m-%d}"}
    return _("on")


@login_required
def mailbox_auto_reply(request, pk):
    mailbox = _get_mailbox_for_user(request, pk, manage=False)  # its owner sets its own auto-reply
    return _auto_reply_page(request, mailbox, back=_mailbox_page(request, mailbox))


@login_required
def alias_auto_reply(request, pk):
    alias = _get_alias_for_user(request, pk)
    return _auto_reply_page(request, alias, back=reverse("alias_edit", args=[alias.pk]))


@login_required
@require_POST
def domain_greylisting(request, pk):
    domain = _get_domain_for_user(request, pk)
    form = GreylistingForm(request.POST)
    form.is_valid()  # a checkbox: always valid
    domain = domains.domain_set_greylisting(actor=request.user, domain=domain,
                                            enabled=form.cleaned_data["greylisting"], client_ip=client_ip(request))
    message = _("Greylisting is on for %(name)s.") if domain.greylisting else _("Greylisting is off for %(name)s.")
    messages.success(request, message % {"name": domain.unicode_name})
    return redirect("domain_detail", pk=domain.pk)
