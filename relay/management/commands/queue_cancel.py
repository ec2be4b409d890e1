from accounts.management.cli import ServiceCommand
from relay.management.cli import message_named, message_row
from relay.panel import services


class Command(ServiceCommand):
    help = ("Cancel a waiting message: the recipients not yet delivered are dropped, or told to the sender with "
            "--bounce; audited as support's cancel.")

    def add_command_arguments(self, parser):
        parser.add_argument("message", help="queue id (or database id) of the message")
        parser.add_argument("--reason", required=True, help="why it is cancelled (in the audit log and any bounce)")
        parser.add_argument("--bounce", action="store_true", help="send the sender a bounce for the recipients dropped")

    def run(self, **options) -> dict:
        message = services.message_cancel(actor=None, message=message_named(options["message"]),
                                          bounce=options["bounce"], reason=options["reason"])
        return {"cancelled": message_row(message), "bounced": options["bounce"]}

    def text(self, result: dict) -> str:
        done = "cancelled and bounced to the sender" if result["bounced"] else "cancelled and discarded"
        return f"Message {result['cancelled']['queue_id']} {done}."
