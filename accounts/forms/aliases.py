"""Alias, catch-all, alias-domain and forwarding forms (the rules are accounts.services.aliases' own)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Domain
from accounts.normalize import normalize_local_part

DESTINATIONS_HELP = _("One address a line: mailboxes or aliases here, or addresses elsewhere.")


class AliasEditForm(forms.Form):
    destinations = forms.CharField(label=_("Deliver to"), widget=forms.Textarea(attrs={"rows": 4}),
                                   help_text=DESTINATIONS_HELP)
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    is_enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)

    def clean_destinations(self):
        return [line.strip() for line in self.cleaned_data["destinations"].replace(",", "\n").splitlines()
                if line.strip()]


class AliasCreateForm(AliasEditForm):
    local_part = forms.CharField(label=_("Address"), max_length=64, help_text=_("The part before the @."))
    field_order = ["local_part", "destinations", "description", "is_enabled"]

    def clean_local_part(self):
        return normalize_local_part(self.cleaned_data["local_part"])


class CatchallForm(forms.Form):
    catchall = forms.CharField(label=_("Catch-all"), max_length=320, required=False,
                               help_text=_("Mail to any address of this domain that no mailbox or alias takes goes "
                                           "here. Leave empty to refuse it (recommended: catch-alls attract spam)."))


class AliasOfForm(forms.Form):
    alias_of = forms.ModelChoiceField(label=_("Alias domain of"), queryset=Domain.objects.none(), required=False,
                                      empty_label=_("— none: a domain of its own —"),
                                      help_text=_("Mail to any address here goes to the same address at that domain."))

    def __init__(self, *args, domain: Domain, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["alias_of"].queryset = (Domain.objects.filter(customer_id=domain.customer_id, alias_of=None)
                                            .exclude(pk=domain.pk).order_by("name"))


class ForwardingForm(forms.Form):
    forward_to = forms.CharField(label=_("Forward a copy to"), widget=forms.Textarea(attrs={"rows": 3}),
                                 required=False, help_text=_("One address a line; leave empty to forward nothing."))
    keep_copy = forms.BooleanField(label=_("Keep a copy in this mailbox"), required=False, initial=True)

    def clean_forward_to(self):
        return [line.strip() for line in self.cleaned_data["forward_to"].replace(",", "\n").splitlines()
                if line.strip()]
