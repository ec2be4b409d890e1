from accounts import dnscheck
from accounts.management.cli import ServiceCommand, customer_named
from accounts.services.domains import domain_create


class Command(ServiceCommand):
    help = "Add a domain to a customer; prints the TXT record that proves ownership (or, verified, the records to publish)."

    def add_command_arguments(self, parser):
        parser.add_argument("customer", help="customer name")
        parser.add_argument("domain", help="domain name, Unicode or ASCII")
        parser.add_argument("--reseller", metavar="NAME",
                            help="the customer's reseller when several customers share the name (“-”: the provider)")
        parser.add_argument("--verified", action="store_true",
                            help="mark it verified without the DNS proof (the provider vouches for it)")

    def run(self, **options) -> dict:
        customer = customer_named(options["customer"], reseller=options["reseller"])
        domain = domain_create(actor=None, customer=customer, name=options["domain"],
                               verified=options["verified"])
        name, value = dnscheck.verification_record(domain)
        return {
            "id": domain.pk, "name": domain.name, "unicode_name": domain.unicode_name, "customer": customer.name,
            "status": domain.status, "verified": domain.is_verified,
            "verification": {"name": name, "type": "TXT", "value": value},
            "records": dnscheck.expected_records(domain) if domain.is_verified else [],
        }

    def text(self, result: dict) -> str:
        lines = [f"Domain {result['unicode_name']} added to “{result['customer']}” (id {result['id']}, {result['status']})."]
        if result["verified"]:
            lines.append("Records to publish:")
            lines += [f"  {r['zone_line']}" + ("" if r["required"] else "  (optional: automatic client setup)")
                      for r in result["records"]]
        else:
            v = result["verification"]
            lines.append(f"To verify, publish: {v['name']} TXT {v['value']}")
        return "\n".join(lines)
