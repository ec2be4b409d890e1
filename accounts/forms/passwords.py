"""Passwords set by someone else: support staff (any user, with a reason) or a reseller admin (its customers' users)."""

from django import forms


class SetPasswordForOtherForm(forms.Form):
    # Re-rendered only on the same POST's response (a refused reason or a too-weak password), never stored.
    password = forms.CharField(label="New password", strip=False,
                               widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}))
    reason = forms.CharField(label="Reason (goes into the audit log)", max_length=300, required=False)
