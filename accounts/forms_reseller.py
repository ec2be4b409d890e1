"""Forms of the reseller console and the plan page: they parse input; the rules live in limits and resellers."""

from django import forms


def _number(label: str, *, required: bool = True, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=0, required=required, help_text=help_text)


SENDING_HELP = "Recipients; leave empty for no limit of its own."


class PlanForm(forms.Form):
    max_domains = _number("Domains")
    max_mailboxes = _number("Mailboxes")
    max_storage_mb = _number("Storage (MB)")
    send_per_hour = _number("Sending per hour", required=False, help_text=SENDING_HELP)
    send_per_day = _number("Sending per day", required=False, help_text=SENDING_HELP)
    max_message_size = _number("Largest message (bytes)")
    max_recipients = _number("Recipients per message")

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


class BrandingForm(forms.Form):
    panel_title = forms.CharField(label="Panel title", max_length=100, required=False)
    logo = forms.FileField(label="Logo (PNG, JPEG or GIF, at most 256 KB)", required=False)
    remove_logo = forms.BooleanField(label="Remove the current logo", required=False)
    support_email = forms.EmailField(label="Support address", required=False)
    help_url = forms.URLField(label="Help page", required=False, assume_scheme="https")


class DomainLimitsForm(forms.Form):
    send_per_hour = _number("Sending per hour", required=False, help_text=SENDING_HELP)
    send_per_day = _number("Sending per day", required=False, help_text=SENDING_HELP)
    max_storage_mb = _number("Storage for its mailboxes (MB)", required=False,
                             help_text="Leave empty to let its mailboxes share the plan's storage.")


class MailboxLimitsForm(forms.Form):
    send_per_hour = _number("Sending per hour", required=False, help_text=SENDING_HELP)
    send_per_day = _number("Sending per day", required=False, help_text=SENDING_HELP)
    quota_mb = _number("Storage quota (MB)")
