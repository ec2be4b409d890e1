"""SMTP credentials (app passwords): list, create (the secret is shown once, on the page the creation redirects
to), revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from accounts import selectors
from accounts.forms.credentials import CredentialForm, RevokeForm
from accounts.models import User
from accounts.services import credentials
from accounts.views.clients import relay_settings
from accounts.views.common import (_get_credential_for_user, _get_domain_for_user, _get_mailbox_for_user, client_ip,
                                   customer_in_context, paginate, shown_once_keep, shown_once_take, submit)


@login_required
def credential_list(request):
    visible = selectors.credentials_visible_to(request.user)
    q = request.GET.get("q", "").strip()
    if q:
        visible = visible.filter(Q(username__icontains=q) | Q(description__icontains=q))
    return render(request, "accounts/credentials/list.html", {"page": paginate(request, visible), "q": q,
                                                              "now": timezone.now()})


def _scope_choices(request):
    """(domains, mailboxes, customer) the user may create a credential for: a mailbox owner only their own address."""
    user = request.user
    if user.role == User.Role.MAILBOX:
        return [], list(selectors.mailboxes_visible_to(user)), None
    customer = customer_in_context(request)
    domains = selectors.domains_visible_to(user).filter(customer=customer)
    mailboxes = selectors.mailboxes_managed_by(user).filter(domain__customer=customer)
    return list(domains), list(mailboxes), customer


@login_required
@never_cache
def credential_add(request):
    domains, mailboxes, customer = _scope_choices(request)
    form = CredentialForm(request.POST or None, domains=domains, mailboxes=mailboxes,
                          initial={"scope": request.GET.get("scope")})
    new = submit(request, form, lambda data: _create(request, form, data),
                 failure=_("The credential was not created; see the errors below."))
    if new is not None:
        messages.success(request, _("SMTP credential %(name)s was created.") % {"name": new.credential.username})
        shown_once_keep(request, kind="credential", pk=new.credential.pk, secret=new.secret)
        return redirect("credential_created", pk=new.credential.pk)
    return render(request, "accounts/credentials/add.html", {"form": form, "customer": customer,
                                                             "has_scopes": bool(domains or mailboxes)})


@login_required
@never_cache
def credential_created(request, pk):
    credential = _get_credential_for_user(request, pk)
    return render(request, "accounts/credentials/created.html", {
        "credential": credential, "secret": shown_once_take(request, kind="credential", pk=credential.pk),
        "relay": relay_settings()})


def _create(request, form, data) -> credentials.NewCredential:
    kind, pk = form.scope_parts()
    if kind == "m":
        mailbox = _get_mailbox_for_user(request, pk, manage=False)
        domain = mailbox.domain
    else:
        mailbox, domain = None, _get_domain_for_user(request, pk)
    return credentials.credential_create(
        actor=request.user, domain=domain, mailbox=mailbox, description=data["description"],
        allowed_networks=data["allowed_networks"], expires_at=data["expires_at"], client_ip=client_ip(request))


@login_required
def credential_revoke(request, pk):
    credential = _get_credential_for_user(request, pk)
    form = RevokeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if credential.revoked_at is None:
            hold = form.cleaned_data["hold"]
            credentials.credential_revoke(actor=request.user, credential=credential, client_ip=client_ip(request),
                                          hold=hold)
            if hold:
                text = _("%(name)s was revoked; it can no longer sign in. What it queued and has not delivered yet "
                         "is held for support.")
            else:
                text = _("%(name)s was revoked; it can no longer sign in.")
            messages.success(request, text % {"name": credential.username})
        else:
            messages.warning(request, _("%(name)s was already revoked.") % {"name": credential.username})
        return redirect("credential_list")
    return render(request, "accounts/credentials/revoke.html", {"credential": credential, "form": form})
