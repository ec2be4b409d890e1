"""What the account commands share: --json output, clear errors with a non-zero exit, lookups by name."""

import argparse
import json
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import selectors
from accounts.bounds import EXPIRES_DAYS_MAX
from accounts.models import Customer, Domain, Mailbox, Reseller
from accounts.normalize import normalize_domain
from accounts.services.mailboxes import generate_password
from accounts.services.tenants import user_create


class ServiceCommand(BaseCommand):
    """A command that calls one service: `run()` returns a dict, printed as JSON with --json, else as `text()`."""

    # call_command(..., stdin=io.StringIO("...")) feeds --password-stdin in tests.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        self.add_command_arguments(parser)
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def add_command_arguments(self, parser):
        pass

    def handle(self, *args, **options):
        self.stdin = options.get("stdin") or sys.stdin
        try:
            result = self.run(**options)
        except ValidationError as exc:
            raise CommandError(error_text(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
        else:
            self.stdout.write(self.text(result))

    def run(self, **options) -> dict:
        raise NotImplementedError

    def text(self, result: dict) -> str:
        return "\n".join(f"{key}: {value}" for key, value in result.items() if not isinstance(value, (dict, list)))

    def password(self, options, *, address: str = "", panel: bool = False) -> tuple[str, bool]:
        """(password, generated): from the first line of stdin with --password-stdin, else a new strong one.

        A panel user's password typed in meets the panel's rules (AUTH_PASSWORD_VALIDATORS); a mailbox's is
        checked by the mailbox service.
        """
        if options.get("password_stdin"):
            line = self.stdin.readline().rstrip("\r\n")
            if not line:
                raise CommandError("--password-stdin: no password on standard input.")
            if panel:
                validate_password(line)
            return line, False
        return generate_password(address=address), True

    def panel_user(self, options, username: str | None, *, role: str, **tenant) -> dict | None:
        """The optional panel login a command creates beside its object (--admin, --user)."""
        if not username:
            return None
        password, generated = self.password(options, panel=True)
        user_create(actor=None, username=username, password=password, role=role, **tenant)
        return login(username, password, generated)


def error_text(exc: ValidationError) -> str:
    # The services' messages name what is wrong in words; the form field they belong to means nothing here.
    return " ".join(exc.messages)


def add_password_stdin(parser, what: str) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help=f"read the {what} password from the first line of standard input "
                             "(otherwise a strong one is generated and printed once)")


def reseller_named(name: str) -> Reseller:
    reseller = Reseller.objects.filter(name__iexact=name.strip()).first()
    if reseller is None:
        raise CommandError(f"No reseller named “{name}”.")
    return reseller


def customer_named(name: str, *, reseller: str | None = None) -> Customer:
    """A customer by name, narrowed by --reseller (use "-" for customers directly under the provider)."""
    qs = Customer.objects.select_related("reseller").filter(name__iexact=name.strip())
    if reseller == "-":
        qs = qs.filter(reseller__isnull=True)
    elif reseller:
        qs = qs.filter(reseller=reseller_named(reseller))
    found = list(qs[:2])
    if not found:
        raise CommandError(f"No customer named “{name}”" + (f" under reseller “{reseller}”." if reseller else "."))
    if len(found) > 1:
        raise CommandError(f"Several customers are named “{name}”: name the reseller with --reseller "
                           "(“-” for a customer directly under the provider).")
    return found[0]


def domain_named(name: str) -> Domain:
    try:
        ascii_name = normalize_domain(name)
    except ValidationError as exc:
        raise CommandError(error_text(exc)) from None
    domain = Domain.objects.select_related("customer").filter(name=ascii_name).first()
    if domain is None:
        raise CommandError(f"No domain {name.strip()} here; add it first with domain_add.")
    return domain


def mailbox_at(address: str) -> Mailbox:
    mailbox = selectors.mailbox_by_address(address)
    if mailbox is None:
        raise CommandError(f"No mailbox {address.strip()} here; create it first with mailbox_add.")
    return mailbox


def login(username: str, password: str, generated: bool) -> dict:
    """A login as printed: the password only when it was generated here (one typed in is not echoed)."""
    return {"username": username, "password": password if generated else None}


def login_lines(credentials: dict | None, who: str) -> list[str]:
    if not credentials:
        return []
    lines = [f"{who} login: {credentials['username']}"]
    if credentials.get("password"):
        lines.append(f"{who} password (shown only now): {credentials['password']}")
    return lines


def nonnegative(value: str) -> int:
    """argparse type for limits: a whole number, 0 or more (the services check each field's upper bound)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{value}” is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 or more")
    return number


def days(value: str) -> int:
    """argparse type for a number of days from now, up to accounts.bounds.EXPIRES_DAYS_MAX."""
    number = nonnegative(value)
    if number > EXPIRES_DAYS_MAX:
        raise argparse.ArgumentTypeError(f"{value} days is too far ahead; use at most {EXPIRES_DAYS_MAX}")
    return number
