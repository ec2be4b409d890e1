"""Filtering the audit log."""

from django import forms
from django.utils.translation import gettext_lazy as _, pgettext_lazy

from accounts.bounds import field_max
from accounts.models import Customer


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150, label=_("Actor (username)"))
    object_type = forms.ChoiceField(required=False, label=_("Object"), choices=[
        ("", _("any")), ("customer", _("customer")), ("domain", _("domain")), ("mailbox", _("mailbox")),
        ("smtpcredential", _("SMTP credential")), ("reseller", _("reseller")), ("user", _("user")),
        ("queuedmessage", _("message")), ("authlockout", _("lockout"))])
    object_id = forms.CharField(required=False, max_length=64, label=_("Object id"))
    customer = forms.IntegerField(required=False, min_value=1, max_value=field_max(Customer, "id"),
                                  label=_("Customer id"))
    action = forms.CharField(required=False, max_length=60, label=_("Action"),
                             help_text=_("e.g. customer.suspend, or limit"))
    date_from = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=pgettext_lazy("end of a date range", "To"),
                              widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data
