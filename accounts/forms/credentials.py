"""Creating an SMTP credential."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from accounts.networks import parse_networks


class CredentialForm(forms.Form):
    scope = forms.ChoiceField(label=_("May send as"),
                              help_text=_("One mailbox's address, or any address of one domain."))
    description = forms.CharField(label=_("Description"), max_length=200, required=False,
                                  help_text=_("What uses it, e.g. “web shop” or “office printer”."))
    allowed_networks = forms.CharField(
        label=_("Allowed networks"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional: IP addresses or networks (CIDR) it may be used from, one per line. Empty means any."))
    expires_at = forms.DateTimeField(label=_("Expires"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text=_("Optional; after this time it no longer signs in."))

    def __init__(self, *args, domains, mailboxes, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(f"m:{m.pk}", m.unicode_address) for m in mailboxes]
        choices += [(f"d:{d.pk}", gettext("any address @%(domain)s") % {"domain": d.unicode_name}) for d in domains]
        self.fields["scope"].choices = choices

    def clean_allowed_networks(self):
        return "\n".join(str(network) for network in parse_networks(self.cleaned_data["allowed_networks"]))

    def clean_expires_at(self):
        expires = self.cleaned_data["expires_at"]
        if expires is not None and expires <= timezone.now():
            raise ValidationError(gettext("The expiry must be in the future."))
        return expires

    def scope_parts(self) -> tuple[str, int]:
        kind, _, pk = self.cleaned_data["scope"].partition(":")
        return kind, int(pk)


class RevokeForm(forms.Form):
    hold = forms.BooleanField(required=False, label=_(
        "Also hold what it queued and has not delivered yet (it may have leaked)"
        ": support releases or cancels each message"))
