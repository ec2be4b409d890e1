from accounts.management.cli import ServiceCommand, customer_named, domain_named
from accounts.management.commands.alias_add import alias_dict
from accounts.models import Alias


class Command(ServiceCommand):
    help = "List aliases, all or those of one customer or domain."

    def add_command_arguments(self, parser):
        parser.add_argument("--customer", help="only this customer's aliases")
        parser.add_argument("--reseller", help="the customer's reseller, when several customers share its name "
                                               "(“-” for one directly under the provider)")
        parser.add_argument("--domain", help="only the aliases at this domain")

    def run(self, **options) -> dict:
        aliases = Alias.objects.select_related("domain", "domain__customer").order_by("domain__name", "local_part")
        if options.get("customer"):
            aliases = aliases.filter(domain__customer=customer_named(options["customer"],
                                                                     reseller=options.get("reseller")))
        if options.get("domain"):
            aliases = aliases.filter(domain=domain_named(options["domain"]))
        return {"aliases": [alias_dict(alias) for alias in aliases]}

    def text(self, result: dict) -> str:
        if not result["aliases"]:
            return "No aliases."
        return "\n".join(f"{a['unicode_address']} -> {', '.join(a['destinations'])}"
                         f"{'' if a['enabled'] else ' (disabled)'}" for a in result["aliases"])
