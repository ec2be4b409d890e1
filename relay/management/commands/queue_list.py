from django.core.management.base import CommandError

from accounts.management.cli import ServiceCommand
from relay.management.cli import message_row
from relay.models import QueuedMessage
from relay.panel import selectors


class Command(ServiceCommand):
    help = "List queued messages, newest first, as the panel's message log filters them."

    def add_command_arguments(self, parser):
        parser.add_argument("--state", choices=QueuedMessage.State.values, help="only messages in this state")
        parser.add_argument("--customer", metavar="NAME", help="only messages of customers whose name contains NAME")
        parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    def run(self, **options) -> dict:
        if options["limit"] < 1:
            raise CommandError("--limit must be 1 or more.")
        found = selectors.message_search(QueuedMessage.objects.all(), selectors.MessageFilter(
            state=options["state"] or "", customer=(options["customer"] or "").strip()))
        page = selectors.with_recipient_counts(list(found[:options["limit"]]))
        return {"messages": [message_row(message) for message in page]}

    def text(self, result: dict) -> str:
        if not result["messages"]:
            return "No messages."
        lines = [f"{'QUEUE ID':<20} {'STATE':<10} {'RCPT':>4} {'TRIES':>5} {'NEXT ATTEMPT':<16} {'CUSTOMER':<20} FROM"]
        for m in result["messages"]:
            lines.append(f"{m['queue_id']:<20} {m['state']:<10} {m['recipients']:>4} {m['attempts']:>5} "
                         f"{m['next_attempt_at'][:16].replace('T', ' '):<16} {(m['customer'] or '-')[:20]:<20} "
                         f"{m['mail_from'] or '<>'}")
        return "\n".join(lines)
