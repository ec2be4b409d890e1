from datetime import timedelta

from django.utils import timezone

from accounts.management.cli import ServiceCommand
from relay.management.cli import lockout_row
from relay.models import AuthLockout
from relay.submission.lockout import active_lockouts


class Command(ServiceCommand):
    help = "List the SMTP AUTH lockouts in force (with --recent, also those that ended in the last week)."

    def add_command_arguments(self, parser):
        parser.add_argument("--recent", action="store_true", help="also lockouts lifted or ended in the last 7 days")

    def run(self, **options) -> dict:
        qs = AuthLockout.objects.select_related("customer")
        if options["recent"]:
            qs = qs.filter(locked_until__gt=timezone.now() - timedelta(days=7))
        else:
            qs = active_lockouts(qs)
        return {"lockouts": [lockout_row(lockout) for lockout in qs.order_by("-created_at")[:500]]}

    def text(self, result: dict) -> str:
        if not result["lockouts"]:
            return "No lockouts."
        lines = [f"{'ID':>6} {'KIND':<9} {'VALUE':<40} {'FAILS':>5} {'UNTIL':<16} STATE"]
        for lo in result["lockouts"]:
            state = "in force" if lo["active"] else ("lifted" if lo["lifted_at"] else "ended")
            lines.append(f"{lo['id']:>6} {lo['kind']:<9} {lo['value'][:40]:<40} {lo['failures']:>5} "
                         f"{lo['locked_until'][:16].replace('T', ' '):<16} {state}")
        return "\n".join(lines)
