"""Adding a domain."""

from django import forms

from accounts.normalize import normalize_domain


class DomainForm(forms.Form):
    name = forms.CharField(label="Domain name", max_length=253,
                           help_text="For example example.com or bücher.example; without www.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        normalize_domain(name)  # raises the reason a name is not valid
        return name
