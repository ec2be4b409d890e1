"""API keys: list the user's own, create (the key is shown once, on the page the creation redirects to), revoke.

A key acts as the user who creates it, so support staff, reseller admins and customers each manage their own;
a mailbox owner has none (the panel's role gate answers 403)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.forms.api_keys import ApiKeyForm
from accounts.models import ApiKey, User
from accounts.services import api_keys
from accounts.views.common import client_ip, paginate, role_required, shown_once_keep, shown_once_take, submit

KEY_ROLES = (User.Role.SUPPORT, User.Role.RESELLER, User.Role.CUSTOMER)


def _get_api_key_for_user(request, pk) -> ApiKey:
    return get_object_or_404(ApiKey.objects.filter(user=request.user), pk=pk)


@role_required(*KEY_ROLES)
def api_key_list(request):
    keys = ApiKey.objects.filter(user=request.user)
    return render(request, "accounts/api_keys/list.html", {"page": paginate(request, keys), "now": timezone.now()})


@role_required(*KEY_ROLES)
@never_cache
def api_key_add(request):
    form = ApiKeyForm(request.POST or None)
    new = submit(request, form, lambda data: api_keys.api_key_create(
        actor=request.user, user=request.user, name=data["name"], read_only=data["read_only"],
        allowed_networks=data["allowed_networks"], expires_at=data["expires_at"], client_ip=client_ip(request)),
        failure=_("The API key was not created; see the errors below."))
    if new is not None:
        shown_once_keep(request, kind="api_key", pk=new.api_key.pk, secret=new.secret)
        return redirect("api_key_created", pk=new.api_key.pk)
    return render(request, "accounts/api_keys/add.html", {"form": form})


@role_required(*KEY_ROLES)
@never_cache
def api_key_created(request, pk):
    api_key = _get_api_key_for_user(request, pk)
    return render(request, "accounts/api_keys/created.html", {
        "api_key": api_key, "secret": shown_once_take(request, kind="api_key", pk=api_key.pk)})


@role_required(*KEY_ROLES)
@require_POST
def api_key_revoke(request, pk):
    api_key = _get_api_key_for_user(request, pk)
    if api_key.revoked_at is None:
        api_keys.api_key_revoke(actor=request.user, api_key=api_key, client_ip=client_ip(request))
        messages.success(request, _("The API key “%(name)s” was revoked; it no longer works.") % {"name": api_key.name})
    return redirect("api_key_list")
