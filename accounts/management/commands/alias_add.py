from django.core.management.base import CommandError

from accounts.management.cli import ServiceCommand, domain_named
from accounts.services.aliases import alias_create


def alias_dict(alias) -> dict:
    return {"id": alias.pk, "address": alias.address, "unicode_address": alias.unicode_address,
            "destinations": list(alias.destinations), "enabled": alias.is_enabled, "description": alias.description,
            "customer": alias.domain.customer.name}


class Command(ServiceCommand):
    help = "Create an alias: mail to ADDRESS goes to every DESTINATION (mailboxes or aliases here, or addresses elsewhere)."

    def add_command_arguments(self, parser):
        parser.add_argument("address", help="local@domain; the domain must already be added")
        parser.add_argument("destinations", nargs="+", metavar="destination")
        parser.add_argument("--description", default="")
        parser.add_argument("--disabled", action="store_true", help="create it switched off")

    def run(self, **options) -> dict:
        address = options["address"].strip()
        local, at, domain_name = address.rpartition("@")
        if not at or not local:
            raise CommandError(f"“{address}” is not an address: use local@domain.")
        domain = domain_named(domain_name)
        alias = alias_create(actor=None, domain=domain, local_part=local, destinations=options["destinations"],
                             description=options["description"], is_enabled=not options["disabled"])
        return alias_dict(alias)

    def text(self, result: dict) -> str:
        state = "" if result["enabled"] else " (disabled)"
        return f"Alias {result['unicode_address']} created{state}: {', '.join(result['destinations'])}."
