"""Forgotten passwords: "Forgot password?" by e-mail through Django's token machinery, and a new password set by
support staff (any user) or a reseller admin (its customers' users)."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.forms.passwords import ResetRequestForm, SetPasswordForOtherForm
from accounts.models import User
from accounts.services import tenants
from accounts.views.common import client_ip, code_url, role_required, submit


class ResetRequestView(auth_views.PasswordResetView):
    """The same answer whether or not the address belongs to anyone: no account enumeration. The mail goes out
    through settings.EMAIL_BACKEND, the product's own outbound queue."""

    form_class = ResetRequestForm
    template_name = "accounts/password_reset/request.html"
    email_template_name = "accounts/password_reset/email.txt"
    subject_template_name = "accounts/password_reset/subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"client_ip": client_ip(self.request)}


class ResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset/done.html"


class ResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset/confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        # Through the service, so the change is audited like every other password change.
        tenants.user_set_password(actor=self.user, user=self.user, password=form.cleaned_data["new_password1"],
                                  client_ip=client_ip(self.request), reason="reset through an e-mailed link")
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        return redirect(self.success_url)


class ResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset/complete.html"


def _back_url(request, user: User) -> str:
    if request.user.is_support:
        return reverse("support:customer", args=[user.customer_id]) if user.customer_id else reverse("support:home")
    return reverse("reseller:customer", args=[user.customer_id])


@role_required(User.Role.SUPPORT, User.Role.RESELLER)
def user_password(request, pk):
    if request.user.is_support and not request.user.is_verified():
        return redirect(code_url(request.get_full_path()))
    user = get_object_or_404(selectors.users_managed_by(request.user), pk=pk)
    form = SetPasswordForOtherForm(request.POST or None)
    done = submit(request, form, lambda data: tenants.user_password_set_for(
        actor=request.user, user=user, password=data["password"], reason=data["reason"],
        client_ip=client_ip(request)) or True,
        failure=_("The password of %(username)s was not changed.") % {"username": user.get_username()})
    if done:
        messages.success(request, _("%(username)s signs in with the new password now; their other sessions have "
                                    "ended.") % {"username": user.get_username()})
        return redirect(_back_url(request, user))
    return render(request, "accounts/users/password.html", {
        "form": form, "target": user, "back": _back_url(request, user),
        "reason_required": request.user.is_support})
