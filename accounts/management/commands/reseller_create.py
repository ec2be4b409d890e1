from django.db import transaction

from accounts.management.cli import ServiceCommand, add_password_stdin, login_lines, nonnegative
from accounts.models import User
from accounts.services.tenants import reseller_create


class Command(ServiceCommand):
    help = "Create a reseller (and optionally its admin user) with the pool it hands out to its customers."

    def add_command_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--admin", metavar="USERNAME", help="also create a reseller admin who signs in to the panel")
        add_password_stdin(parser, "admin's")
        parser.add_argument("--support-email", default="")
        for option in ("max-customers", "max-domains", "max-mailboxes", "max-storage-mb", "send-per-hour",
                       "send-per-day"):
            parser.add_argument(f"--{option}", type=nonnegative, metavar="N")

    def run(self, **options) -> dict:
        pool = {key: options[key] for key in ("max_customers", "max_domains", "max_mailboxes", "max_storage_mb",
                                              "send_per_hour", "send_per_day") if options[key] is not None}
        if options["support_email"]:
            pool["support_email"] = options["support_email"]
        with transaction.atomic():
            reseller = reseller_create(actor=None, name=options["name"], **pool)
            result = {"id": reseller.pk, "name": reseller.name, "max_customers": reseller.max_customers,
                      "max_domains": reseller.max_domains, "max_mailboxes": reseller.max_mailboxes,
                      "max_storage_mb": reseller.max_storage_mb, "send_per_hour": reseller.send_per_hour,
                      "send_per_day": reseller.send_per_day}
            result["admin"] = self.panel_user(options, options["admin"], role=User.Role.RESELLER, reseller=reseller)
        return result

    def text(self, result: dict) -> str:
        lines = [f"Reseller “{result['name']}” created (id {result['id']})."]
        return "\n".join(lines + login_lines(result["admin"], "Admin"))
