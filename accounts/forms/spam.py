"""The spam filter page's forms: thresholds (a customer's, a domain's), support's range, a listed sender."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import SenderRule

# What an empty score follows, said whole for each kind of form (one sentence for translators, not a template).
FOLLOW_RSPAMD = _("An rspamd score; leave empty to follow rspamd's own actions.")
FOLLOW_CUSTOMER = _("An rspamd score; leave empty to follow the customer's setting.")


def score_field(label: str, help_text: str) -> forms.FloatField:
    return forms.FloatField(label=label, required=False, min_value=-1000, max_value=1000, help_text=help_text)


class ThresholdsForm(forms.Form):
    mark_score = score_field(_("Mark as spam (file into Junk) from score"), FOLLOW_RSPAMD)
    reject_score = score_field(_("Refuse from score"), FOLLOW_RSPAMD)


class DomainThresholdsForm(forms.Form):
    mark_score = score_field(_("Mark as spam from score"), FOLLOW_CUSTOMER)
    reject_score = score_field(_("Refuse from score"), FOLLOW_CUSTOMER)
    quarantine = forms.BooleanField(
        label=_("Hold in quarantine instead of refusing"), required=False,
        help_text=_("Held messages can be released or deleted here; each mailbox gets a daily digest of them."))


class BoundsForm(forms.Form):
    min_score = score_field(_("Lowest score the customer may choose"),
                            _("An rspamd score; leave empty to follow SPAM_SCORE_MIN."))
    max_score = score_field(_("Highest score the customer may choose"),
                            _("An rspamd score; leave empty to follow SPAM_SCORE_MAX."))


class SenderRuleForm(forms.Form):
    kind = forms.ChoiceField(label=_("List"), choices=SenderRule.Kind.choices)
    value = forms.CharField(label=_("Sender address or domain"), max_length=320,
                            help_text=_("Matches the envelope sender and the From: address, e.g. boss@example.com "
                                        "or example.com."))
