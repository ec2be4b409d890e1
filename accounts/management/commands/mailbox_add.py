from django.core.management.base import CommandError

from accounts.management.cli import ServiceCommand, add_password_stdin, domain_named, nonnegative
from accounts.services.mailboxes import mailbox_create


class Command(ServiceCommand):
    help = "Create a mailbox; without --password-stdin a strong password is generated and printed once."

    def add_command_arguments(self, parser):
        parser.add_argument("address", help="local@domain; the domain must already be added")
        add_password_stdin(parser, "mailbox")
        parser.add_argument("--smtp", action="store_true", help="switch on SMTP access (sign in with address + password)")
        parser.add_argument("--quota-mb", type=nonnegative, default=1024, metavar="N", help="storage quota (default 1024)")
        parser.add_argument("--display-name", default="")

    def run(self, **options) -> dict:
        address = options["address"].strip()
        local, at, domain_name = address.rpartition("@")
        if not at or not local:
            raise CommandError(f"“{address}” is not an address: use local@domain.")
        domain = domain_named(domain_name)
        password, generated = self.password(options, address=address)
        mailbox = mailbox_create(actor=None, domain=domain, local_part=local, password=password,
                                 quota_mb=options["quota_mb"], smtp_enabled=options["smtp"],
                                 display_name=options["display_name"])
        return {"id": mailbox.pk, "address": mailbox.address, "unicode_address": mailbox.unicode_address,
                "customer": domain.customer.name, "quota_mb": mailbox.quota_mb, "smtp_enabled": mailbox.smtp_enabled,
                "password": password if generated else None}

    def text(self, result: dict) -> str:
        smtp = "SMTP access on" if result["smtp_enabled"] else "SMTP access off"
        lines = [f"Mailbox {result['unicode_address']} created (id {result['id']}, {result['quota_mb']} MB, {smtp})."]
        if result["password"]:
            lines.append(f"Password (shown only now): {result['password']}")
        return "\n".join(lines)
