"""CSV import of a customer's domains, mailboxes and aliases.

Every row goes through the same service as the panel's forms (domain_create, mailbox_create, alias_update, …), so
the plan's limits, the reseller's pool and the audit log apply to each. The whole file is one transaction: one bad
row and nothing is written, and every bad row is reported at once (each row runs in a savepoint, so the rows after a
bad one are still checked against what the good ones before it would have made). A dry run is the same import,
rolled back at the end: what it reports is exactly what the import would do.
"""

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _, gettext_noop, ngettext

from accounts.audit_words import field_change
from accounts.models import Alias, Customer, Domain, Mailbox, User
from accounts.normalize import normalize_domain, split_address
from accounts.services.aliases import alias_create, alias_update
from accounts.services.domains import domain_create
from accounts.services.mailboxes import generate_password, mailbox_create, mailbox_set_password, mailbox_update

# The columns of each kind, in export order; the first is the row's key and required.
COLUMNS = {
    "domains": ("domain",),
    "mailboxes": ("address", "display_name", "quota_mb", "smtp_enabled", "password"),
    "aliases": ("address", "destinations", "description", "enabled"),
}
MAX_ROWS = 5000
_TRUE = {"yes", "y", "true", "1", "on"}
_FALSE = {"no", "n", "false", "0", "off"}


@dataclass
class RowResult:
    line: int
    key: str
    action: str = ""  # "create", "update", "unchanged"
    changes: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class ImportResult:
    kind: str
    rows: list[RowResult]
    dry_run: bool
    # (address, password) of mailboxes given a generated password: shown once, on the import's own response.
    passwords: list[tuple[str, str]] = field(default_factory=list)

    @property
    def errors(self) -> list[RowResult]:
        return [row for row in self.rows if row.error]

    @property
    def written(self) -> bool:
        return not self.dry_run and not self.errors

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action and not row.error)

    @property
    def summary(self) -> str:
        return _("%(create)s to create, %(update)s to change, %(unchanged)s unchanged, %(refused)s refused") % {
            "create": self.count("create"), "update": self.count("update"), "unchanged": self.count("unchanged"),
            "refused": len(self.errors)}


def parse(kind: str, text: str) -> list[tuple[int, dict]]:
    """The rows as (line number, {column: value}); ValidationError for a file that is no such CSV at all."""
    if kind not in COLUMNS:
        raise ValidationError({"kind": _("Choose domains, mailboxes or aliases.")})
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    key = COLUMNS[kind][0]
    if key not in header:
        raise ValidationError({"file": _("The first line must name the columns, at least “%(key)s”: %(columns)s.")
                                       % {"key": key, "columns": ",".join(COLUMNS[kind])}})
    unknown = sorted(set(header) - set(COLUMNS[kind]))
    if unknown:
        raise ValidationError({"file": ngettext("Unknown column %(names)s; the columns are %(columns)s.",
                                                "Unknown columns %(names)s; the columns are %(columns)s.", len(unknown))
                                       % {"names": ", ".join(unknown), "columns": ",".join(COLUMNS[kind])}})
    reader.fieldnames = header
    rows = []
    for row in reader:
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue  # blank lines
        if None in row:
            raise ValidationError({"file": _("Line %(line)s has more values than there are columns.")
                                           % {"line": reader.line_num}})
        rows.append((reader.line_num, {name: (value or "").strip() for name, value in row.items()}))
        if len(rows) > MAX_ROWS:
            raise ValidationError({"file": _("At most %(count)s rows per file: split it.") % {"count": MAX_ROWS}})
    if not rows:
        raise ValidationError({"file": _("The file has no rows below its header.")})
    return rows


def _flag(row: dict, name: str, default: bool | None) -> bool | None:
    value = row.get(name, "").lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValidationError(_("%(column)s must be yes or no, not “%(value)s”.") % {"column": name, "value": row[name]})


def _number(row: dict, name: str) -> int | None:
    value = row.get(name, "")
    if not value:
        return None
    if not value.isdigit():
        raise ValidationError(_("%(column)s must be a whole number of MB, not “%(value)s”.")
                              % {"column": name, "value": value})
    return int(value)


def _domain_of(customer: Customer, address: str) -> tuple[str, Domain]:
    parts = split_address(address)
    if parts is None:
        raise ValidationError(_("“%(address)s” is not an address.") % {"address": address})
    local, domain_name = parts
    domain = Domain.objects.filter(customer=customer, name=domain_name).first()
    if domain is None:
        raise ValidationError(_("%(domain)s is not one of %(customer)s's domains.")
                              % {"domain": domain_name, "customer": customer.name})
    return local, domain


def _domain_row(*, actor, customer, row, client_ip, passwords) -> tuple[str, list[str]]:
    name = normalize_domain(row["domain"])
    if Domain.objects.filter(customer=customer, name=name).exists():
        return "unchanged", []
    domain = domain_create(actor=actor, customer=customer, name=name, client_ip=client_ip)
    return "create", [_("domain %(domain)s added, to be verified through DNS") % {"domain": domain.unicode_name}]


# A created mailbox's line, by (SMTP access on, password from the file): whole sentences, for translation.
_MAILBOX_CREATED = {
    (True, True): gettext_noop("mailbox %(address)s created (%(quota)s MB, SMTP on, password from the file)"),
    (True, False): gettext_noop("mailbox %(address)s created (%(quota)s MB, SMTP on, password generated)"),
    (False, True): gettext_noop("mailbox %(address)s created (%(quota)s MB, SMTP off, password from the file)"),
    (False, False): gettext_noop("mailbox %(address)s created (%(quota)s MB, SMTP off, password generated)"),
}


def _mailbox_row(*, actor, customer, row, client_ip, passwords) -> tuple[str, list[str]]:
    local, domain = _domain_of(customer, row["address"])
    quota, smtp = _number(row, "quota_mb"), _flag(row, "smtp_enabled", None)
    mailbox = Mailbox.objects.filter(domain=domain, local_part=local.lower()).first()
    if mailbox is None:
        password = row.get("password") or generate_password(address=f"{local}@{domain.name}")
        mailbox = mailbox_create(actor=actor, domain=domain, local_part=local, password=password,
                                 quota_mb=1024 if quota is None else quota, smtp_enabled=bool(smtp),
                                 display_name=row.get("display_name", ""), client_ip=client_ip)
        if not row.get("password"):
            passwords.append((mailbox.unicode_address, password))
        return "create", [_(_MAILBOX_CREATED[(mailbox.smtp_enabled, bool(row.get("password")))])
                          % {"address": mailbox.unicode_address, "quota": mailbox.quota_mb}]
    wanted = {"quota_mb": quota, "smtp_enabled": smtp,
              "display_name": row.get("display_name") if "display_name" in row else None}
    changes = {name: value for name, value in wanted.items()
               if value is not None and getattr(mailbox, name) != value}
    lines = [field_change(name, getattr(mailbox, name), value) for name, value in changes.items()]
    if changes:
        mailbox_update(actor=actor, mailbox=mailbox, client_ip=client_ip, **changes)
    if row.get("password"):
        mailbox_set_password(actor=actor, mailbox=mailbox, password=row["password"], client_ip=client_ip)
        lines.append(_("password set from the file"))
    return ("update" if lines else "unchanged"), lines


def _destinations(row: dict) -> list[str]:
    return [d for d in row.get("destinations", "").replace(";", " ").replace(",", " ").split() if d]


def _alias_row(*, actor, customer, row, client_ip, passwords) -> tuple[str, list[str]]:
    local, domain = _domain_of(customer, row["address"])
    enabled = _flag(row, "enabled", None)
    alias = Alias.objects.filter(domain=domain, local_part=local.lower()).first()
    if alias is None:
        alias = alias_create(actor=actor, domain=domain, local_part=local, destinations=_destinations(row),
                             description=row.get("description", ""), is_enabled=enabled is not False,
                             client_ip=client_ip)
        return "create", [_("alias %(address)s → %(destinations)s")
                          % {"address": alias.unicode_address, "destinations": ", ".join(alias.destinations)}]
    names = ("destinations", "description", "is_enabled")
    before = [getattr(alias, name) for name in names]
    alias = alias_update(actor=actor, alias=alias, destinations=_destinations(row) or None,
                         description=row.get("description") if "description" in row else None,
                         is_enabled=enabled, client_ip=client_ip)
    lines = [field_change(name, old, getattr(alias, name)) for name, old in zip(names, before)
             if old != getattr(alias, name)]
    return ("update" if lines else "unchanged"), lines


ROW = {"domains": _domain_row, "mailboxes": _mailbox_row, "aliases": _alias_row}


def bulk_import(*, actor: User | None, customer: Customer, kind: str, text: str, dry_run: bool,
                client_ip: str | None = None) -> ImportResult:
    """Import the CSV's rows for the customer (the caller has checked the actor may manage it): all or nothing."""
    rows = parse(kind, text)
    result = ImportResult(kind=kind, rows=[], dry_run=dry_run)
    with transaction.atomic():
        for line, row in rows:
            outcome = RowResult(line=line, key=row[COLUMNS[kind][0]])
            try:
                with transaction.atomic():  # a savepoint: a refused row leaves nothing behind
                    outcome.action, outcome.changes = ROW[kind](actor=actor, customer=customer, row=row,
                                                                client_ip=client_ip, passwords=result.passwords)
            except ValidationError as exc:
                outcome.error = " ".join(exc.messages)
            result.rows.append(outcome)
        if not result.written:
            transaction.set_rollback(True)
    if not result.written:
        result.passwords = []  # nothing was made: a password shown now would be for nothing
    return result
