"""Adding a domain; its inbound DMARC setting."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Domain
from accounts.normalize import normalize_domain


class DomainForm(forms.Form):
    name = forms.CharField(label=_("Domain name"), max_length=253,
                           help_text=_("For example example.com or bücher.example; without www."))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        normalize_domain(name)  # raises the reason a name is not valid
        return name


class DmarcRejectPolicyForm(forms.Form):
    dmarc_reject_policy = forms.ChoiceField(
        label=_("Mail failing the sender's DMARC p=reject"), choices=Domain.DmarcRejectPolicy.choices,
        widget=forms.RadioSelect,
        help_text=_("Refusing is the safe default. Deliver it marked (filed into Junk) only if mail you expect arrives "
                    "through forwarders or mailing lists that break its DMARC alignment."))
