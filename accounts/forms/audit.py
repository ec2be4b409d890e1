"""Filtering the audit log."""

from django import forms

from accounts.bounds import field_max
from accounts.models import Customer


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150, label="Actor (username)")
    object_type = forms.ChoiceField(required=False, label="Object", choices=[
        ("", "any"), ("customer", "customer"), ("domain", "domain"), ("mailbox", "mailbox"),
        ("smtpcredential", "SMTP credential"), ("reseller", "reseller"), ("user", "user"),
        ("queuedmessage", "message"), ("authlockout", "lockout")])
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    customer = forms.IntegerField(required=False, min_value=1, max_value=field_max(Customer, "id"), label="Customer id")
    action = forms.CharField(required=False, max_length=60, help_text="e.g. customer.suspend, or limit")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
