"""Filter (Sieve), automatic reply and greylisting forms; the rules are accounts.services' own."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import SieveScript

RULE_ROWS = 3  # empty rows offered below the saved rules


class RuleForm(forms.Form):
    field = forms.ChoiceField(label=pgettext_lazy("filter rule", "If"), required=False, choices=[
        ("from", pgettext_lazy("header", "From")), ("to", _("To or Cc")), ("subject", _("Subject"))])
    contains = forms.CharField(label=pgettext_lazy("filter rule", "contains"), max_length=200, required=False)
    action = forms.ChoiceField(label=pgettext_lazy("filter rule", "then"), required=False, choices=[
        ("fileinto", _("move to folder")), ("redirect", _("forward to address")), ("discard", _("discard"))])
    target = forms.CharField(label=_("folder or address"), max_length=320, required=False)


RuleFormSet = forms.formset_factory(RuleForm, extra=RULE_ROWS, max_num=50)


class FilterForm(forms.Form):
    mode = forms.ChoiceField(label=_("Filter with"), choices=SieveScript.Mode.choices, widget=forms.RadioSelect)
    # Not stripped: sievec's line numbers are those of the text as typed.
    script = forms.CharField(label=_("Sieve script"), required=False, strip=False, widget=forms.Textarea(attrs={
        "rows": 14, "class": "mono", "spellcheck": "false"}),
        help_text=_("RFC 5228 Sieve, checked before it is saved. Runs after spam is filed into Junk. Automatic "
                    "replies are set on the auto-reply page, not here."))

    def __init__(self, data=None, *, rules: list[dict], **kwargs):
        super().__init__(data, **kwargs)
        self.rules = RuleFormSet(data, initial=rules, prefix="rule")

    def is_valid(self):
        return self.rules.is_valid() & super().is_valid()

    def clean(self):
        cleaned = super().clean()
        # Rows left empty are not rules; half-filled ones are, and the service says what they lack.
        cleaned["rules"] = [row for row in (self.rules.cleaned_data if self.rules.is_valid() else [])
                            if (row.get("contains") or "").strip() or (row.get("target") or "").strip()]
        return cleaned


class AutoReplyForm(forms.Form):
    enabled = forms.BooleanField(label=_("Send automatic replies"), required=False)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 8}), max_length=10000)
    starts_on = forms.DateField(label=_("From (first day)"), required=False,
                                widget=forms.DateInput(attrs={"type": "date"}), help_text=_("Empty: from now on."))
    ends_on = forms.DateField(label=_("Until (last day)"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}), help_text=_("Empty: until turned off."))
    interval_days = forms.IntegerField(label=_("Answer each sender at most once in (days)"), min_value=1,
                                       max_value=365, initial=7)


class GreylistingForm(forms.Form):
    greylisting = forms.BooleanField(
        label=_("Greylist new senders"), required=False,
        help_text=_("The first message from a server, sender and recipient never seen together is refused for "
                    "a few minutes and taken when the sending server tries again. It stops much spam software, "
                    "which does not retry. The cost: first messages from new correspondents arrive late (minutes, "
                    "sometimes an hour, depending on the sender's retries: sign-up codes and password resets too), "
                    "and a sender that never retries is lost. Off by default."))
