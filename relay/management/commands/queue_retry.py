from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.management.cli import ServiceCommand
from relay.management.cli import message_named, message_row
from relay.models import QueuedMessage
from relay.panel import services


class Command(ServiceCommand):
    help = ("Try a waiting (queued, deferred or held) message again now, or every deferred one; audited as support's "
            "retry.")

    def add_command_arguments(self, parser):
        parser.add_argument("message", nargs="?", help="queue id (or database id) of the message")
        parser.add_argument("--all-deferred", action="store_true", help="every deferred message instead of one")

    def run(self, **options) -> dict:
        if bool(options["message"]) == options["all_deferred"]:
            raise CommandError("Name one message, or give --all-deferred.")
        if options["message"]:
            messages = [message_named(options["message"])]
        else:
            messages = list(QueuedMessage.objects.defer("content").filter(state=QueuedMessage.State.DEFERRED)
                            .order_by("next_attempt_at", "pk"))
        if options["message"]:
            return {"retried": [message_row(services.message_retry_now(actor=None, message=messages[0]))],
                    "skipped": []}
        retried, skipped = [], []
        for message in messages:
            try:
                retried.append(message_row(services.message_retry_now(actor=None, message=message)))
            except ValidationError as exc:  # delivered or cancelled since it was listed
                skipped.append({"queue_id": message.queue_id, "error": " ".join(exc.messages)})
        return {"retried": retried, "skipped": skipped}

    def text(self, result: dict) -> str:
        if not result["retried"] and not result["skipped"]:
            return "No deferred messages."
        lines = [f"Message {m['queue_id']} will be tried again now." for m in result["retried"]]
        return "\n".join(lines + [f"Skipped {m['queue_id']}: {m['error']}" for m in result["skipped"]])
