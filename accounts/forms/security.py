"""Signing in: the password step and the two-factor code."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts.selectors import may_sign_in


class LoginForm(AuthenticationForm):
    username = forms.CharField(label=_("Username or mailbox address"), max_length=320,
                               widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not may_sign_in(user):
            raise forms.ValidationError(_("This account is suspended. Contact support."), code="suspended")


class CodeForm(forms.Form):
    token = forms.CharField(label=_("Code"), max_length=20, strip=True,
                            widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "one-time-code",
                                                          "inputmode": "numeric"}))
