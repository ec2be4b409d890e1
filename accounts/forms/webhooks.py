"""Registering a webhook endpoint."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import WebhookEventType


class WebhookForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500, help_text=_("https://… where the events are POSTed."))
    events = forms.MultipleChoiceField(label=_("Events"), required=False, choices=WebhookEventType.choices,
                                       widget=forms.CheckboxSelectMultiple, help_text=_("None ticked: every event."))
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
