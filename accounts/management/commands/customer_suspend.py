from accounts.management.cli import ServiceCommand, customer_named
from accounts.services import suspension


class Command(ServiceCommand):
    help = "Suspend a customer (no panel or SMTP sign-in, its mail held; nothing is deleted), with a reason."

    suspended = True

    def add_command_arguments(self, parser):
        parser.add_argument("customer", help="customer name")
        parser.add_argument("--reseller", metavar="NAME",
                            help="the customer's reseller when several customers share the name (“-”: the provider)")
        parser.add_argument("--reason", required=True, help="why (kept in the audit log, sent with the webhook)")
        if self.suspended:
            parser.add_argument("--hold", action="store_true", help="also hold what it queued and has not sent")

    def run(self, **options) -> dict:
        customer = customer_named(options["customer"], reseller=options["reseller"])
        if self.suspended:
            customer = suspension.suspend(actor=None, obj=customer, reason=options["reason"], hold=options["hold"])
        else:
            customer = suspension.restore(actor=None, obj=customer, reason=options["reason"])
        return {"id": customer.pk, "name": customer.name, "status": customer.status}

    def text(self, result: dict) -> str:
        return f"Customer “{result['name']}” (id {result['id']}) is {result['status']}."
