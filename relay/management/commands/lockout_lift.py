from accounts.management.cli import ServiceCommand
from relay.management.cli import lockout_named, lockout_row
from relay.panel import services


class Command(ServiceCommand):
    help = "Lift an SMTP AUTH lockout (by id, client address or username); audited as support's lift."

    def add_command_arguments(self, parser):
        parser.add_argument("lockout", help="the lockout's id, or the client address or username it locks")
        parser.add_argument("--reason", default="", help="why (in the audit log)")

    def run(self, **options) -> dict:
        lockout = services.lockout_lift(actor=None, lockout=lockout_named(options["lockout"]),
                                        reason=options["reason"].strip()[:300])
        return {"lifted": lockout_row(lockout)}

    def text(self, result: dict) -> str:
        return f"The lockout of {result['lifted']['value']} is lifted."
