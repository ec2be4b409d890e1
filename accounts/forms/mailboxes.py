"""Mailbox forms: creation, settings, passwords (the rules are accounts.services.mailboxes' own)."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

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
            self.add_error("password2", "The two passwords differ.")
        return cleaned


def _password_fields():
    return (
        forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(render_value=False),
                        help_text=f"At least {settings.MAILBOX_PASSWORD_MIN_LENGTH} characters, not only digits, "
                                  "without the address in it."),
        forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput(render_value=False)),
    )


class MailboxCreateForm(_PasswordPairMixin, forms.Form):
    local_part = forms.CharField(label="Address", max_length=64, help_text="The part before the @.")
    display_name = forms.CharField(label="Display name", max_length=150, required=False)
    password, password2 = _password_fields()
    quota_mb = forms.IntegerField(label="Storage quota (MB)", min_value=1, max_value=LIMIT_MAX, initial=1024)
    smtp_enabled = forms.BooleanField(label="SMTP access (send mail with this address and password)", required=False)

    def __init__(self, *args, domain, **kwargs):
        super().__init__(*args, **kwargs)
        self.domain = domain

    def clean_local_part(self):
        local = normalize_local_part(self.cleaned_data["local_part"])
        self.address = f"{local}@{self.domain.name}"
        return local


class MailboxEditForm(forms.Form):
    display_name = forms.CharField(label="Display name", max_length=150, required=False)
    quota_mb = forms.IntegerField(label="Storage quota (MB)", min_value=1, max_value=LIMIT_MAX)
    # SMTP access has its own switch on the page (mailbox_smtp), so a stale form never undoes it.
    is_active = forms.BooleanField(label="Enabled (can receive, sign in and send)", required=False)


class MailboxPasswordForm(_PasswordPairMixin, forms.Form):
    password, password2 = _password_fields()

    def __init__(self, *args, mailbox, **kwargs):
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        self.address = mailbox.address


class OwnPasswordForm(MailboxPasswordForm):
    """A mailbox owner changing their own password proves they know the current one."""

    current_password = forms.CharField(label="Current password", strip=False, widget=forms.PasswordInput)
    field_order = ["current_password", "password", "password2"]

    def clean_current_password(self):
        current = self.cleaned_data["current_password"]
        if not hashing.check_hash(current, self.mailbox.password_hash):
            raise ValidationError("That is not the current password.")
        return current
