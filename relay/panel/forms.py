from django import forms

from relay.models import QueuedMessage
from relay.panel.selectors import MessageFilter

PAGE_SIZES = (25, 50, 100)


class MessageSearchForm(forms.Form):
    customer = forms.CharField(required=False, max_length=150, label="Customer name")
    recipient = forms.CharField(required=False, max_length=320)
    sender = forms.CharField(required=False, max_length=320)
    subject = forms.CharField(required=False, max_length=300)
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *QueuedMessage.State.choices])
    date_from = forms.DateField(required=False, label="From date", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To date", widget=forms.DateInput(attrs={"type": "date"}))
    per_page = forms.TypedChoiceField(required=False, coerce=int, empty_value=PAGE_SIZES[0],
                                      choices=[(n, n) for n in PAGE_SIZES], label="Per page")

    def __init__(self, *args, staff: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not staff:  # a customer or mailbox owner sees one customer's mail anyway
            del self.fields["customer"]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def to_filter(self) -> MessageFilter:
        data = self.cleaned_data
        return MessageFilter(
            customer=data.get("customer", "").strip(), recipient=data.get("recipient", "").strip(), sender=data.get("sender", "").strip(),
            subject=data.get("subject", "").strip(), state=data.get("state", ""),
            date_from=data.get("date_from"), date_to=data.get("date_to"),
        )


class MessageCancelForm(forms.Form):
    ACTIONS = [("bounce", "Bounce it to the sender"), ("discard", "Discard it silently")]

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect, initial="bounce")
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Kept in the audit log and, for a bounce, told to the sender.")

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the message is cancelled.")
        return reason


class SmartHostForm(forms.Form):
    url = forms.CharField(
        label="Smart host", required=False, max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "smtp://user:password@smarthost.example.net:587?tls=starttls"}),
        help_text="smtp://[user:password@]host[:port][?tls=starttls|none] or smtps://[user:password@]host[:port]. "
                  "Empty: deliver by MX lookup.")
    reason = forms.CharField(label="Reason", max_length=500, help_text="Kept in the audit log.")
