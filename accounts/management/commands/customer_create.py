from django.db import transaction

from accounts.management.cli import ServiceCommand, add_password_stdin, login_lines, nonnegative, reseller_named
from accounts.models import User
from accounts.services.tenants import customer_create

PLAN = ("max_domains", "max_mailboxes", "max_storage_mb", "send_per_hour", "send_per_day")


class Command(ServiceCommand):
    help = "Create a customer, under a reseller or directly under the provider, with its plan limits."

    def add_command_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--reseller", metavar="NAME", help="the reseller it belongs to (default: the provider)")
        for option in PLAN:
            parser.add_argument(f"--{option.replace('_', '-')}", type=nonnegative, metavar="N")
        parser.add_argument("--contact-email", default="")
        parser.add_argument("--user", metavar="USERNAME", help="also create a customer user who signs in to the panel")
        add_password_stdin(parser, "user's")

    def run(self, **options) -> dict:
        reseller = reseller_named(options["reseller"]) if options["reseller"] else None
        plan = {key: options[key] for key in PLAN if options[key] is not None}
        if options["contact_email"]:
            plan["contact_email"] = options["contact_email"]
        with transaction.atomic():
            customer = customer_create(actor=None, name=options["name"], reseller=reseller, **plan)
            result = {"id": customer.pk, "name": customer.name, "reseller": reseller.name if reseller else None,
                      **{key: getattr(customer, key) for key in PLAN}}
            result["user"] = self.panel_user(options, options["user"], role=User.Role.CUSTOMER, customer=customer)
        return result

    def text(self, result: dict) -> str:
        under = f"reseller “{result['reseller']}”" if result["reseller"] else "the provider"
        lines = [f"Customer “{result['name']}” created under {under} (id {result['id']}): "
                 f"{result['max_domains']} domains, {result['max_mailboxes']} mailboxes, "
                 f"{result['max_storage_mb']} MB."]
        return "\n".join(lines + login_lines(result["user"], "User"))
