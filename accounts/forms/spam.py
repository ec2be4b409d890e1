"""The spam filter page's forms: thresholds (a customer's, a domain's), support's range, a listed sender."""

from django import forms

from accounts.models import SenderRule

SCORE_HELP = "An rspamd score; leave empty to follow {fallback}."


def score_field(label: str, fallback: str) -> forms.FloatField:
    return forms.FloatField(label=label, required=False, min_value=-1000, max_value=1000,
                            help_text=SCORE_HELP.format(fallback=fallback))


class ThresholdsForm(forms.Form):
    mark_score = score_field("Mark as spam (file into Junk) from score", "rspamd's own actions")
    reject_score = score_field("Refuse from score", "rspamd's own actions")


class DomainThresholdsForm(forms.Form):
    mark_score = score_field("Mark as spam from score", "the customer's setting")
    reject_score = score_field("Refuse from score", "the customer's setting")
    quarantine = forms.BooleanField(
        label="Hold in quarantine instead of refusing", required=False,
        help_text="Held messages can be released or deleted here; each mailbox gets a daily digest of them.")


class BoundsForm(forms.Form):
    min_score = score_field("Lowest score the customer may choose", "SPAM_SCORE_MIN")
    max_score = score_field("Highest score the customer may choose", "SPAM_SCORE_MAX")


class SenderRuleForm(forms.Form):
    kind = forms.ChoiceField(label="List", choices=SenderRule.Kind.choices)
    value = forms.CharField(label="Sender address or domain", max_length=320,
                            help_text="Matches the envelope sender and the From: address, e.g. boss@example.com "
                                      "or example.com.")
