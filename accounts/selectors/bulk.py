"""A customer's domains, mailboxes and aliases as CSV, in the columns the import reads (accounts.services.bulk):
an export edited and imported again changes only what was edited. Passwords are never exported."""

import csv
import io

from accounts.models import Alias, Customer, Domain, Mailbox
from accounts.services.bulk import COLUMNS


def _rows(kind: str, customer: Customer):
    if kind == "domains":
        for domain in Domain.objects.filter(customer=customer).order_by("name"):
            yield [domain.unicode_name]
    elif kind == "mailboxes":
        mailboxes = Mailbox.objects.filter(domain__customer=customer).select_related("domain")
        for m in mailboxes.order_by("domain__name", "local_part"):
            yield [m.unicode_address, m.display_name, m.quota_mb, "yes" if m.smtp_enabled else "no", ""]
    else:
        aliases = Alias.objects.filter(domain__customer=customer).select_related("domain")
        for a in aliases.order_by("domain__name", "local_part"):
            yield [a.unicode_address, " ".join(a.destinations), a.description, "yes" if a.is_enabled else "no"]


def export_csv(*, kind: str, customer: Customer) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(COLUMNS[kind])
    writer.writerows(_rows(kind, customer))
    return out.getvalue()


def passwords_csv(passwords: list[tuple[str, str]]) -> str:
    """The generated passwords of one import, for the one page that shows them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("address", "password"))
    writer.writerows(passwords)
    return out.getvalue()
