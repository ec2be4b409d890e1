"""Forgotten passwords: the reset request, and a password set by someone else (support staff: any user, with a
reason; a reseller admin: its customers' users)."""

from django import forms
from django.contrib.auth.forms import PasswordResetForm
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts.languages import language_of
from accounts.services.security import password_reset_request


class ResetRequestForm(PasswordResetForm):
    """Django's reset form, mailing only users whose reset requests stay within the hourly limit (each is audited)."""

    def __init__(self, *args, client_ip: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.client_ip = client_ip

    def get_users(self, email):
        for user in super().get_users(email):
            if password_reset_request(user=user, client_ip=self.client_ip):
                yield user

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        # In the language the user chose for the panel, not the language of whoever asked for the link.
        with translation.override(language_of(context["user"])):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


class SetPasswordForOtherForm(forms.Form):
    # Re-rendered only on the same POST's response (a refused reason or a too-weak password), never stored.
    password = forms.CharField(label=_("New password"), strip=False,
                               widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}))
    reason = forms.CharField(label=_("Reason (goes into the audit log)"), max_length=300, required=False)
