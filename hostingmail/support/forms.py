from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.bounds import field_max
from accounts.forms.common import MIB, message_size_bytes, message_size_mb
from accounts.services.limits import FIELDS, LABELS, NULLABLE

# Each limit's label, as the field names read ("max_domains": "Max. domains").
LIMIT_LABELS = {
    "max_customers": _("Max. customers"), "max_domains": _("Max. domains"),
    "max_mailboxes": _("Max. mailboxes"), "max_storage_mb": _("Max. storage mb"),
    "quota_mb": _("Quota mb"), "send_per_hour": _("Send per hour"),
    "send_per_day": _("Send per day"), "max_recipients": _("Max. recipients"),
    "max_aliases": _("Max. aliases"),
}


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Find"), max_length=320, required=False, strip=True, widget=forms.TextInput(attrs={
        "autofocus": True, "placeholder": _("customer, domain, address, credential username or queue id"),
        "type": "search"}))


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300, widget=forms.TextInput(
        attrs={"placeholder": _("why (goes into the audit log)")}))


class SuspendForm(ReasonForm):
    hold = forms.BooleanField(required=False, label=_(
        "Also hold what it queued and has not delivered yet (its login may have leaked)"
        ": support releases or cancels each message"))


class LimitsForm(ReasonForm):
    """One number field per limit the object has (limits.FIELDS); empty means "no limit of its own" where allowed."""

    def __init__(self, *args, obj, **kwargs):
        super().__init__(*args, **kwargs)
        model = type(obj)
        self.obj = obj
        for name in FIELDS[model]:
            nullable = (model, name) in NULLABLE
            help_text = str(LABELS.get(name, ""))
            if nullable:
                help_text = _("%(what)s; empty: no limit of its own") % {"what": help_text}
            label = LIMIT_LABELS.get(name) or name.replace("_", " ").replace("max ", "max. ").capitalize()
            if name == "max_message_size":  # entered and shown in MB
                self.fields[f"{name}_mb"] = forms.IntegerField(
                    required=True, min_value=0, max_value=field_max(model, name) // MIB,
                    label=_("Largest message (MB)"), initial=message_size_mb(obj.max_message_size))
                continue
            self.fields[name] = forms.IntegerField(
                required=not nullable, min_value=0, max_value=field_max(model, name), initial=getattr(obj, name),
                label=label, help_text=help_text)
        self.order_fields([f"{n}_mb" if n == "max_message_size" else n for n in FIELDS[model]] + ["reason"])

    def changes(self) -> dict:
        changes = {name: value for name, value in self.cleaned_data.items() if name != "reason"}
        if "max_message_size_mb" in changes:
            changes["max_message_size"] = message_size_bytes(changes.pop("max_message_size_mb"),
                                                              kept=self.obj.max_message_size)
        return changes
