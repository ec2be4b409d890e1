"""What the panel's forms share. Forms validate input and nothing else; views hand cleaned data to a service."""

from django import forms

from accounts.bounds import LIMIT_MAX

SENDING_HELP = "Recipients; leave empty for no limit of its own."


def limit_field(label: str, *, required: bool = True, help_text: str = "") -> forms.IntegerField:
    # Every limit shares one bound (accounts.bounds); the service checks it again for callers without a form.
    return forms.IntegerField(label=label, min_value=0, max_value=LIMIT_MAX, required=required, help_text=help_text)
