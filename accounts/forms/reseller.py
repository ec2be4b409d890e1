"""Forms of the reseller console: a customer's plan, a new customer, its details, a suspension's reason, the brand."""

from django import forms

from accounts.forms.common import SENDING_HELP, limit_field


class PlanForm(forms.Form):
    max_domains = limit_field("Domains")
    max_mailboxes = limit_field("Mailboxes")
    max_storage_mb = limit_field("Storage (MB)")
    send_per_hour = limit_field("Sending per hour", required=False, help_text=SENDING_HELP)
    send_per_day = limit_field("Sending per day", required=False, help_text=SENDING_HELP)
    max_message_size = limit_field("Largest message (bytes)")
    max_recipients = limit_field("Recipients per message")
    max_aliases = limit_field("Aliases")

    def plan(self) -> dict:
        return {name: self.cleaned_data[name] for name in PlanForm.base_fields}


class CustomerCreateForm(PlanForm):
    name = forms.CharField(label="Customer name", max_length=150)
    username = forms.CharField(label="Sign-in name of its first user", max_length=150)
    email = forms.EmailField(label="E-mail of that user", required=False)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)

    field_order = ["name", "username", "email", "password"]


class CustomerEditForm(forms.Form):
    name = forms.CharField(label="Customer name", max_length=150)
    contact_email = forms.EmailField(label="Contact address", required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300)


class SuspendForm(ReasonForm):
    hold = forms.BooleanField(required=False, label=(
        "Also hold what it queued and has not delivered yet (its login may have leaked)"
        ": support releases or cancels each message"))


class BrandingForm(forms.Form):
    panel_title = forms.CharField(label="Panel title", max_length=100, required=False)
    logo = forms.FileField(label="Logo (PNG, JPEG or GIF, at most 256 KB)", required=False)
    remove_logo = forms.BooleanField(label="Remove the current logo", required=False)
    support_email = forms.EmailField(label="Support address", required=False)
    help_url = forms.URLField(label="Help page", required=False, assume_scheme="https")
