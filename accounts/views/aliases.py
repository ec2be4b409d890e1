"""Aliases (list, create, edit, delete), a domain's catch-all and alias-domain setting, a mailbox's forwarding."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors
from accounts.forms.aliases import AliasCreateForm, AliasEditForm, AliasOfForm, CatchallForm, ForwardingForm
from accounts.models import User
from accounts.normalize import domain_search_term
from accounts.services import aliases
from accounts.views.common import (_get_alias_for_user, _get_domain_for_user, _get_mailbox_for_user, apply_errors,
                                   client_ip, paginate, submit)


@login_required
def alias_list(request):
    visible = selectors.aliases_visible_to(request.user).order_by("domain__name", "local_part")
    q = request.GET.get("q", "").strip()
    if q:
        local, _, domain = q.partition("@")
        visible = visible.filter(local_part__icontains=local.lower(),
                                 domain__name__icontains=domain_search_term(domain))
    domains = selectors.domains_visible_to(request.user) if request.user.role == User.Role.CUSTOMER else []
    return render(request, "accounts/aliases/list.html", {"page": paginate(request, visible), "domains": domains,
                                                          "q": q})


@login_required
def alias_add(request, domain_pk):
    domain = _get_domain_for_user(request, domain_pk)
    form = AliasCreateForm(request.POST or None)
    alias = submit(request, form, lambda data: aliases.alias_create(
        actor=request.user, domain=domain, local_part=data["local_part"], destinations=data["destinations"],
        description=data["description"], is_enabled=data["is_enabled"], client_ip=client_ip(request)),
        failure=_("The alias was not created; see the errors below."))
    if alias is not None:
        messages.success(request, _("Alias %(address)s was created.") % {"address": alias.unicode_address})
        return redirect("alias_list")
    return render(request, "accounts/aliases/add.html", {"form": form, "domain": domain})


@login_required
def alias_edit(request, pk):
    alias = _get_alias_for_user(request, pk)
    initial = {"destinations": "\n".join(alias.destinations), "description": alias.description,
               "is_enabled": alias.is_enabled}
    form = AliasEditForm(request.POST or None, initial=initial)
    saved = submit(request, form, lambda data: aliases.alias_update(
        actor=request.user, alias=alias, destinations=data["destinations"], description=data["description"],
        is_enabled=data["is_enabled"], client_ip=client_ip(request)),
        failure=_("The alias was not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("%(name)s was saved.") % {"name": alias.unicode_address})
        return redirect("alias_edit", pk=alias.pk)
    return render(request, "accounts/aliases/edit.html", {"form": form, "alias": alias})


@login_required
def alias_delete(request, pk):
    alias = _get_alias_for_user(request, pk)
    if request.method == "POST":
        address = alias.unicode_address
        aliases.alias_delete(actor=request.user, alias=alias, client_ip=client_ip(request))
        messages.success(request, _("Alias %(address)s was deleted.") % {"address": address})
        return redirect("alias_list")
    return render(request, "accounts/aliases/delete.html", {"alias": alias})


def domain_forms(domain, data=None) -> dict:
    """The domain page's catch-all and alias-domain forms."""
    return {"catchall_form": CatchallForm(data, initial={"catchall": domain.catchall}),
            "alias_of_form": AliasOfForm(data, domain=domain, initial={"alias_of": domain.alias_of_id})}


def _domain_setting(request, pk, form, action, success: str):
    """success: the note once saved, with %(domain)s for the domain's name."""
    domain = _get_domain_for_user(request, pk)
    form = form(domain)
    if form.is_valid():
        try:
            action(domain, form.cleaned_data)
            messages.success(request, success % {"domain": domain.unicode_name})
        except ValidationError as exc:
            apply_errors(form, exc)
    if form.errors:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("domain_detail", pk=domain.pk)


@login_required
@require_POST
def domain_catchall(request, pk):
    return _domain_setting(
        request, pk, lambda domain: CatchallForm(request.POST),
        lambda domain, data: aliases.domain_set_catchall(actor=request.user, domain=domain,
                                                         destination=data["catchall"], client_ip=client_ip(request)),
        _("The catch-all of %(domain)s is saved."))


@login_required
@require_POST
def domain_alias_of(request, pk):
    return _domain_setting(
        request, pk, lambda domain: AliasOfForm(request.POST, domain=domain),
        lambda domain, data: aliases.domain_set_alias_of(actor=request.user, domain=domain, target=data["alias_of"],
                                                         client_ip=client_ip(request)),
        _("%(domain)s is saved."))


@login_required
def mailbox_forwarding(request, pk):
    mailbox = _get_mailbox_for_user(request, pk)
    initial = {"forward_to": "\n".join(mailbox.forward_to), "keep_copy": mailbox.forward_keep_copy}
    form = ForwardingForm(request.POST or None, initial=initial)
    saved = submit(request, form, lambda data: aliases.mailbox_set_forwarding(
        actor=request.user, mailbox=mailbox, addresses=data["forward_to"], keep_copy=data["keep_copy"],
        client_ip=client_ip(request)), failure=_("The forwarding was not saved; see the errors below."))
    if saved is not None:
        messages.success(request, _("Forwarding of %(address)s is saved.") % {"address": mailbox.unicode_address})
        return redirect("mailbox_forwarding", pk=mailbox.pk)
    return render(request, "accounts/aliases/forwarding.html", {"form": form, "mailbox": mailbox})
