"""What the panel's forms share. Forms validate input and nothing else; views hand cleaned data to a service."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.bounds import LIMIT_MAX

SENDING_HELP = _("Recipients; leave empty for no limit of its own.")


def limit_field(label: str, *, required: bool = True, help_text: str = "") -> forms.IntegerField:
    # Every limit shares one bound (accounts.bounds); the service checks it again for callers without a form.
    return forms.IntegerField(label=label, min_value=0, max_value=LIMIT_MAX, required=required, help_text=help_text)


MIB = 1024 * 1024


def message_size_mb(size_bytes: int | None) -> int | None:
    """Sizes are entered and shown in MB (2^20 bytes); plans keep bytes."""
    return None if size_bytes is None else round(size_bytes / MIB)


def message_size_bytes(mb: int | None, *, kept: int | None) -> int | None:
    """The bytes for an MB value typed into a form; a value left as shown keeps the exact byte count (`kept`) it
    was rounded from, so saving a form unchanged changes nothing."""
    if kept is not None and mb == message_size_mb(kept):
        return kept
    return None if mb is None else mb * MIB
