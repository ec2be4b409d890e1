from django import forms
from django.utils.translation import gettext_lazy as _

from relay.models import QueuedMessage
from relay.panel.selectors import MessageFilter

PAGE_SIZES = (25, 50, 100)


class MessageSearchForm(forms.Form):
    customer = forms.CharField(required=False, max_length=150, label=_("Customer name"))
    recipient = forms.CharField(required=False, max_length=320, label=_("Recipient"))
    sender = forms.CharField(required=False, max_length=320, label=_("Sender"))
    subject = forms.CharField(required=False, max_length=300, label=_("Subject"))
    state = forms.ChoiceField(required=False, choices=[("", _("Any state")), *QueuedMessage.State.choices],
                              label=_("State"))
    date_from = forms.DateField(required=False, label=_("From date"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=_("To date"), widget=forms.DateInput(attrs={"type": "date"}))
    per_page = forms.TypedChoiceField(required=False, coerce=int, empty_value=PAGE_SIZES[0],
                                      choices=[(n, n) for n in PAGE_SIZES], label=_("Per page"))

    def __init__(self, *args, staff: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not staff:  # a customer or mailbox owner sees one customer's mail anyway
            del self.fields["customer"]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def to_filter(self) -> MessageFilter:
        data = self.cleaned_data
        return MessageFilter(
            customer=data.get("customer", "").strip(), recipient=data.get("recipient", "").strip(), sender=data.get("sender", "").strip(),
            subject=data.get("subject", "").strip(), state=data.get("state", ""),
            date_from=data.get("date_from"), date_to=data.get("date_to"),
        )


class MessageCancelForm(forms.Form):
    ACTIONS = [("bounce", _("Bounce it to the sender")), ("discard", _("Discard it silently"))]

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect, initial="bounce", label=_("Action"))
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3}), label=_("Reason"),
                             help_text=_("Kept in the audit log and, for a bounce, told to the sender."))

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Say why the message is cancelled."))
        return reason


class SmartHostForm(forms.Form):
    url = forms.CharField(
        label=_("Smart host"), required=False, max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "smtp://user:password@smarthost.example.net:587?tls=starttls"}),
        help_text=_("smtp://[user:password@]host[:port][?tls=starttls|none] or smtps://[user:password@]host[:port]. "
                    "Empty: deliver by MX lookup."))
    reason = forms.CharField(label=_("Reason"), max_length=500, help_text=_("Kept in the audit log."))
