"""Registering a webhook endpoint."""

from django import forms

from accounts.models import WebhookEventType


class WebhookForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500, help_text="https://… where the events are POSTed.")
    events = forms.MultipleChoiceField(label="Events", required=False, choices=WebhookEventType.choices,
                                       widget=forms.CheckboxSelectMultiple, help_text="None ticked: every event.")
    description = forms.CharField(label="Description", max_length=200, required=False)
