"""A mailbox owner's own page: their address, client settings, password and app passwords."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from accounts import selectors
from accounts.forms import OwnPasswordForm
from accounts.models import User
from accounts.views_mailboxes import _set_password


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
        messages.success(request, "Your password was changed. Use the new one in your mail apps too.")
        return redirect("dashboard")
    return render(request, "accounts/mailboxes/password.html", {"form": form, "mailbox": mailbox})
