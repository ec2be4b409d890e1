"""Mailbox forms: creation, settings, passwords (the rules are accounts.services.mailboxes' own)."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy as _

from accounts import hashing
from accounts.bounds import LIMIT_MAX
from accounts.normalize import normalize_local_part
from accounts.services.mailboxes import validate_mailbox_password


def _password_errors(password: str, address: str) -> list[str]:
    try:
        validate_mailbox_password(password, address=address)
    except ValidationError as exc:
        return exc.message_dict["password"]
    return []


class _PasswordPairMixin:
    """password + password2 that must match and pass the mailbox password rules."""

    address = ""

    def clean(self):
        cleaned = super().clean()
        password, password2 = cleaned.get("password"), cleaned.get("password2")
        if password:
            for error in _password_errors(password, self.address):
                self.add_error("password", error)
        if password and password2 is not None and password != password2:
            self.add_error("password2", gettext("The two passwords differ."))
        return cleaned


def _password_help() -> str:
    return gettext("At least %(count)s characters, not only digits, without the address in it.") % {
        "count": settings.MAILBOX_PASSWORD_MIN_LENGTH}


def _password_fields():
    return (
        # Lazy: written in the language of the page that shows it, not of the process that imported this module.
        forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput(render_value=False),
                        help_text=lazy(_password_help, str)()),
        forms.CharField(label=_("Password again"), strip=False, widget=forms.PasswordInput(render_value=False)),
    )


class MailboxCreateForm(_PasswordPairMixin, forms.Form):
    local_part = forms.CharField(label=_("Address"), max_length=64, help_text=_("The part before the @."))
    display_name = forms.CharField(label=_("Display name"), max_length=150, required=False)
    password, password2 = _password_fields()
    quota_mb = forms.IntegerField(label=_("Storage quota (MB)"), min_value=1, max_value=LIMIT_MAX, initial=1024)
    smtp_enabled = forms.BooleanField(label=_("SMTP access (send mail with this address and password)"),
                                      required=False)

    def __init__(self, *args, domain, **kwargs):
        super().__init__(*args, **kwargs)
        self.domain = domain

    def clean_local_part(self):
        local = normalize_local_part(self.cleaned_data["local_part"])
        self.address = f"{local}@{self.domain.name}"
        return local


class MailboxEditForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), max_length=150, required=False)
    quota_mb = forms.IntegerField(label=_("Storage quota (MB)"), min_value=1, max_value=LIMIT_MAX)
    # SMTP access has its own switch on the page (mailbox_smtp), so a stale form never undoes it.
    is_active = forms.BooleanField(label=_("Enabled (can receive, sign in and send)"), required=False)


class MailboxPasswordForm(_PasswordPairMixin, forms.Form):
    password, password2 = _password_fields()

    def __init__(self, *args, mailbox, **kwargs):
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        self.address = mailbox.address


class OwnPasswordForm(MailboxPasswordForm):
    """A mailbox owner changing their own password proves they know the current one."""

    current_password = forms.CharField(label=_("Current password"), strip=False, widget=forms.PasswordInput)
    field_order = ["current_password", "password", "password2"]

    def clean_current_password(self):
        current = self.cleaned_data["current_password"]
        if not hashing.check_hash(current, self.mailbox.password_hash):
            raise ValidationError(gettext("That is not the current password."))
        return current
