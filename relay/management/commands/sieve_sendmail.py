"""`manage.py sieve_sendmail -f SENDER -- RECIPIENT...`: Dovecot's sendmail_path for Sieve redirects.

Reads the message on standard input, as sendmail does, and queues it in hostingmail's outbound queue
(relay.delivery.forward.sieve_redirect) so that it is counted against the mailbox's sending limits and shows in
the message log. Exit codes are sendmail's (sysexits.h), which Dovecot reads: 0 queued, 67 (EX_NOUSER) the
envelope sender is no active mailbox, 75 (EX_TEMPFAIL) over a sending limit or the database unreachable — the
delivery is then retried later — and 64 (EX_USAGE) bad arguments.
"""

import argparse
import sys

from django.core.management.base import BaseCommand
from django.db import DatabaseError

from accounts.models import Mailbox
from accounts.quotas import QuotaExceeded
from relay.delivery.forward import sieve_redirect

EX_USAGE, EX_NOUSER, EX_TEMPFAIL = 64, 67, 75
MAX_MESSAGE = 64 * 1024 * 1024


class Command(BaseCommand):
    help = "Queue a message a Sieve script redirects (Dovecot's sendmail_path); the message on standard input."

    def run_from_argv(self, argv):
        # sendmail's own command line (-i, -f SENDER, --, recipients), not Django's options.
        parser = argparse.ArgumentParser(prog="sieve_sendmail", add_help=False)
        parser.add_argument("-f", dest="sender", default="")
        parser.add_argument("-i", action="store_true")
        parser.add_argument("-o", action="append", default=[])
        parser.add_argument("recipients", nargs="*")
        try:
            options = parser.parse_args(argv[2:])
        except SystemExit:
            sys.exit(EX_USAGE)
        sys.exit(self.queue(options.sender, options.recipients, sys.stdin.buffer.read(MAX_MESSAGE + 1)))

    def queue(self, sender: str, recipients: list[str], content: bytes) -> int:
        if not sender or not recipients or len(content) > MAX_MESSAGE:
            self.stderr.write("sieve_sendmail: a sender, recipients and a message under 64 MiB are needed")
            return EX_USAGE
        try:
            copy = sieve_redirect(mailbox_address=sender, recipients=recipients, content=content)
        except Mailbox.DoesNotExist:
            self.stderr.write(f"sieve_sendmail: {sender} is not an active mailbox here")
            return EX_NOUSER
        except QuotaExceeded as exceeded:
            self.stderr.write(f"sieve_sendmail: sending limit reached: {exceeded}")
            return EX_TEMPFAIL
        except DatabaseError as error:
            self.stderr.write(f"sieve_sendmail: database unavailable ({type(error).__name__})")
            return EX_TEMPFAIL
        self.stdout.write(f"queued as {copy.queue_id}")
        return 0
