"""Forms of the customer's plan page: a domain's and a mailbox's own limits."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms.common import SENDING_HELP, limit_field


class DomainLimitsForm(forms.Form):
    send_per_hour = limit_field(_("Sending per hour"), required=False, help_text=SENDING_HELP)
    send_per_day = limit_field(_("Sending per day"), required=False, help_text=SENDING_HELP)
    max_storage_mb = limit_field(_("Storage for its mailboxes (MB)"), required=False,
                                 help_text=_("Leave empty to let its mailboxes share the plan's storage."))


class MailboxLimitsForm(forms.Form):
    send_per_hour = limit_field(_("Sending per hour"), required=False, help_text=SENDING_HELP)
    send_per_day = limit_field(_("Sending per day"), required=False, help_text=SENDING_HELP)
    quota_mb = limit_field(_("Storage quota (MB)"))
