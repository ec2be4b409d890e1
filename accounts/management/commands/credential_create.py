from datetime import timedelta

from django.utils import timezone

from accounts.management.cli import ServiceCommand, days, domain_named, mailbox_at
from accounts.services.credentials import credential_create


class Command(ServiceCommand):
    help = ("Create an SMTP app credential scoped to one mailbox's address (ADDRESS) or to every address of a "
            "domain (DOMAIN); prints the username and the secret once.")

    def add_command_arguments(self, parser):
        parser.add_argument("scope", metavar="ADDRESS|DOMAIN")
        parser.add_argument("--description", default="")
        parser.add_argument("--allow", default="", metavar="CIDR[,CIDR...]", help="only from these networks")
        parser.add_argument("--expires-days", type=days, metavar="N", help="expires after N days")

    def run(self, **options) -> dict:
        scope = options["scope"].strip()
        mailbox = mailbox_at(scope) if "@" in scope else None
        domain = mailbox.domain if mailbox else domain_named(scope)
        expires_at = None
        if options["expires_days"] is not None:
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
        new = credential_create(actor=None, domain=domain, mailbox=mailbox, description=options["description"],
                                allowed_networks=options["allow"], expires_at=expires_at)
        credential = new.credential
        return {"id": credential.pk, "username": credential.username, "secret": new.secret,
                "scope": credential.scope_label, "domain": domain.name, "mailbox": mailbox.address if mailbox else None,
                "allowed_networks": credential.allowed_networks.split() if credential.allowed_networks else [],
                "expires_at": credential.expires_at.isoformat() if credential.expires_at else None}

    def text(self, result: dict) -> str:
        return "\n".join([
            f"SMTP credential for {result['scope']} created (id {result['id']}).",
            f"Username: {result['username']}",
            f"Secret (shown only now, stored only as a hash): {result['secret']}",
        ])
