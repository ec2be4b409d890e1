"""Forms of the reseller console: a customer's plan, a new customer, its details, a suspension's reason, the brand,
plan templates."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms.common import SENDING_HELP, limit_field, message_size_bytes, message_size_mb
from accounts.services.limits import PLAN_FIELDS


class PlanForm(forms.Form):
    max_domains = limit_field(_("Domains"))
    max_mailboxes = limit_field(_("Mailboxes"))
    max_storage_mb = limit_field(_("Storage (MB)"))
    send_per_hour = limit_field(_("Sending per hour"), required=False, help_text=SENDING_HELP)
    send_per_day = limit_field(_("Sending per day"), required=False, help_text=SENDING_HELP)
    max_message_size_mb = limit_field(_("Largest message (MB)"))
    max_recipients = limit_field(_("Recipients per message"))
    max_aliases = limit_field(_("Aliases"))

    PLAN_NAMES = ("max_domains", "max_mailboxes", "max_storage_mb", "send_per_hour", "send_per_day",
                  "max_message_size_mb", "max_recipients", "max_aliases")

    @staticmethod
    def initial_from(source) -> dict:
        """Initial values from a customer, a plan template or a dict of plan fields (bytes turned into MB)."""
        get = source.get if isinstance(source, dict) else lambda name: getattr(source, name)
        values = {name: get(name) for name in PLAN_FIELDS}
        values["max_message_size_mb"] = message_size_mb(values.pop("max_message_size"))
        values["_max_message_size"] = get("max_message_size")
        return values

    def plan(self) -> dict:
        data = {name: self.cleaned_data.get(name) for name in self.PLAN_NAMES if name in self.cleaned_data}
        if "max_message_size_mb" in data:
            data["max_message_size"] = message_size_bytes(data.pop("max_message_size_mb"),
                                                          kept=self.initial.get("_max_message_size"))
        return data


class CustomerCreateForm(PlanForm):
    name = forms.CharField(label=_("Customer name"), max_length=150)
    username = forms.CharField(label=_("Sign-in name of its first user"), max_length=150)
    email = forms.EmailField(label=_("E-mail of that user"), required=False)
    # Typed back into the field only on the response to the same POST (an error elsewhere on the form), so one
    # mistake does not cost retyping it; a GET never has a value to render.
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput(
        render_value=True, attrs={"autocomplete": "new-password"}))

    field_order = ["name", "username", "email", "password"]


class CustomerEditForm(forms.Form):
    name = forms.CharField(label=_("Customer name"), max_length=150)
    contact_email = forms.EmailField(label=_("Contact address"), required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300)


class SuspendForm(ReasonForm):
    hold = forms.BooleanField(required=False, label=_(
        "Also hold what it queued and has not delivered yet (its login may have leaked)"
        ": support releases or cancels each message"))


class BrandingForm(forms.Form):
    panel_title = forms.CharField(label=_("Panel title"), max_length=100, required=False)
    logo = forms.FileField(label=_("Logo (PNG, JPEG or GIF, at most 256 KB)"), required=False)
    remove_logo = forms.BooleanField(label=_("Remove the current logo"), required=False)
    support_email = forms.EmailField(label=_("Support address"), required=False)
    help_url = forms.URLField(label=_("Help page"), required=False, assume_scheme="https")
    brand_color = forms.CharField(label=_("Colour of buttons and links"), max_length=7, required=False,
                                  widget=forms.TextInput(attrs={"placeholder": "#1f5fbf", "class": "narrow-input"}),
                                  help_text=_("White text must stay readable on it (contrast ratio 4.5:1 or more)."))
    panel_host = forms.CharField(label=_("Your panel's host name"), max_length=253, required=False,
                                 help_text=_("e.g. mail.example.com, pointed at this panel: its sign-in page shows "
                                             "your brand."))


class PlanTemplateForm(PlanForm):
    name = forms.CharField(label=_("Template name"), max_length=100)

    field_order = ["name"]


class TemplateChoiceForm(forms.Form):
    """Which plan template fills in the plan fields (a GET: nothing is saved until the plan form is sent)."""

    template = forms.ModelChoiceField(queryset=None, label=_("Start from a plan template"), required=False,
                                      empty_label=_("— your own numbers —"))

    def __init__(self, *args, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates
