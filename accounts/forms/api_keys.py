"""Creating an API key."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.networks import parse_networks


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What uses it, e.g. “billing system”."))
    read_only = forms.BooleanField(label=_("Read-only"), required=False,
                                   help_text=_("It may read but never change anything."))
    allowed_networks = forms.CharField(
        label=_("Allowed networks"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional: IP addresses or networks (CIDR) it may be used from, one per line. Empty means any."))
    expires_at = forms.DateTimeField(label=_("Expires"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text=_("Optional; after this time it no longer works."))

    def clean_allowed_networks(self):
        return "\n".join(str(network) for network in parse_networks(self.cleaned_data["allowed_networks"]))

    def clean_expires_at(self):
        expires = self.cleaned_data["expires_at"]
        if expires is not None and expires <= timezone.now():
            raise ValidationError(_("The expiry must be in the future."))
        return expires
