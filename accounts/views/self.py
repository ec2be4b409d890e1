"""What a signed-in user does for themselves: a mailbox owner's page and password, a panel user's password."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.forms.mailboxes import OwnPasswordForm
from accounts.models import User
from accounts.services import tenants
from accounts.views.common import client_ip, submit
from accounts.views.mailboxes import _set_password


def _own_mailbox(request):
    if request.user.role != User.Role.MAILBOX or not request.user.mailbox_id:
        raise Http404("Only a mailbox owner has a mailbox of their own")
    return selectors.mailboxes_visible_to(request.user).get(pk=request.user.mailbox_id)


def mailbox_home(request):
    mailbox = _own_mailbox(request)
    credentials = selectors.credentials_visible_to(request.user).filter(revoked_at__isnull=True)
    return render(request, "accounts/self/home.html", {"mailbox": mailbox, "credentials": credentials})


@login_required
def own_password(request):
    mailbox = _own_mailbox(request)
    form = OwnPasswordForm(request.POST or None, mailbox=mailbox)
    if _set_password(request, form, mailbox):
        request.user.refresh_from_db(fields=["password"])
        update_session_auth_hash(request, request.user)  # this session stays; the others ended
        messages.success(request, _("Your password was changed. Use the new one in your mail apps too."))
        return redirect("dashboard")
    return render(request, "accounts/mailboxes/password.html", {"form": form, "mailbox": mailbox})


@login_required
def account_password(request):
    """A panel user's own sign-in password; a mailbox owner's is the mailbox password."""
    if request.user.role == User.Role.MAILBOX:
        return redirect("own_password")
    form = PasswordChangeForm(request.user, request.POST or None)

    def change(data):
        tenants.user_set_password(actor=request.user, user=request.user, password=data["new_password1"],
                                   client_ip=client_ip(request))
        return True

    if submit(request, form, change, failure=_("Your password was not changed; see the errors below.")):
        update_session_auth_hash(request, request.user)
        messages.success(request, _("Your password was changed."))
        return redirect("dashboard")
    return render(request, "registration/password_change_form.html", {"form": form})
