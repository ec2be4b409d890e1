from accounts import dnscheck
from accounts.management.cli import ServiceCommand, domain_named
from accounts.services.domains import domain_check_now


class Command(ServiceCommand):
    help = ("Check a domain's DNS now, as “Check now” in the panel does (verifying a pending domain whose proof is "
            "published); prints every record to publish, including the DKIM record, with what was found.")

    def add_command_arguments(self, parser):
        parser.add_argument("domain", help="domain name, Unicode or ASCII")

    def run(self, **options) -> dict:
        domain = domain_check_now(actor=None, domain=domain_named(options["domain"]))
        published = dnscheck.records_to_publish(domain)
        fields = ("kind", "label", "name", "short_name", "type", "value", "required", "status", "found", "error",
                  "zone_line")
        return {
            "id": domain.pk, "name": domain.name, "unicode_name": domain.unicode_name, "status": domain.status,
            "verified": domain.is_verified, "checked_at": domain.dns_checked_at.isoformat(),
            "next_check": dnscheck.next_check(domain).isoformat(), "dkim": published["dkim"],
            "records": [{key: record[key] for key in fields}
                        for record in [published["verification"], *published["records"]]],
        }

    def text(self, result: dict) -> str:
        lines = [f"{result['unicode_name']}: {result['status']}, {'verified' if result['verified'] else 'not verified'}"
                 f" (checked {result['checked_at'][:16].replace('T', ' ')})", result["dkim"]["text"], ""]
        for record in result["records"]:
            note = "" if record["required"] else " (optional)"
            lines.append(f"{record['label']}{note}: {record['status']}")
            lines.append(f"  publish: {record['zone_line']}")
            lines += [f"  found:   {value}" for value in record["found"]]
            if record["error"]:
                lines.append(f"  error:   {record['error']}")
        return "\n".join(lines)
