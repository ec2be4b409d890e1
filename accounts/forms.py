"""Panel forms: they validate input and nothing else; the views hand cleaned data to accounts.services."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import hashing
from accounts.normalize import normalize_domain, normalize_local_part
from accounts.services import parse_networks, validate_mailbox_password


def _password_errors(password: str, address: str) -> list[str]:
    try:
        validate_mailbox_password(password, address=address)
    except ValidationError as exc:
        return exc.message_dict["password"]
    return []


class DomainForm(forms.Form):
    name = forms.CharField(label="Domain name", max_length=253,
                           help_text="For example example.com or bücher.example; without www.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        normalize_domain(name)  # raises the reason a name is not valid
        return name


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
    quota_mb = forms.IntegerField(label="Storage quota (MB)", min_value=1, initial=1024)
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
    quota_mb = forms.IntegerField(label="Storage quota (MB)", min_value=1)
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


class CredentialForm(forms.Form):
    scope = forms.ChoiceField(label="May send as",
                              help_text="One mailbox's address, or any address of one domain.")
    description = forms.CharField(label="Description", max_length=200, required=False,
                                  help_text="What uses it, e.g. “web shop” or “office printer”.")
    allowed_networks = forms.CharField(
        label="Allowed networks", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: IP addresses or networks (CIDR) it may be used from, one per line. Empty means any.")
    expires_at = forms.DateTimeField(label="Expires", required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text="Optional; after this time it no longer signs in.")

    def __init__(self, *args, domains, mailboxes, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(f"m:{m.pk}", m.unicode_address) for m in mailboxes]
        choices += [(f"d:{d.pk}", f"any address @{d.unicode_name}") for d in domains]
        self.fields["scope"].choices = choices

    def clean_allowed_networks(self):
        try:
            return "\n".join(parse_networks(self.cleaned_data["allowed_networks"]))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["allowed_networks"]) from None

    def clean_expires_at(self):
        expires = self.cleaned_data["expires_at"]
        if expires is not None and expires <= timezone.now():
            raise ValidationError("The expiry must be in the future.")
        return expires

    def scope_parts(self) -> tuple[str, int]:
        kind, _, pk = self.cleaned_data["scope"].partition(":")
        return kind, int(pk)
