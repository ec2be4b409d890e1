"""What the panel's forms share. Forms validate input and nothing else; views hand cleaned data to a service."""

from django import forms

SENDING_HELP = "Recipients; leave empty for no limit of its own."


def limit_field(label: str, *, required: bool = True, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=0, required=required, help_text=help_text)
