"""A separate OS process racing check_and_count: `python -m tests.relay.quota_racer KIND PK ATTEMPTS HOLD`.

Run with tests.relay.conftest.child_env(), so it opens the test's own database.

Prints "ready", waits for a line on stdin (so every racer starts at once), then tries ATTEMPTS sends of one
recipient each, each in its own transaction kept open HOLD seconds after the count (as the relay's is while it
stores the message), and prints {"accepted": n, "refused": n} as JSON.
"""

import json
import os
import sys
import time


def main() -> None:
    kind, pk, attempts, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.relay.child_settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from accounts import quotas
    from accounts.models import Mailbox, SmtpCredential

    sender = {"mailbox": Mailbox(pk=pk)} if kind == "mailbox" else {"credential": SmtpCredential(pk=pk)}
    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    accepted = refused = 0
    for _ in range(attempts):
        try:
            with transaction.atomic():
                quotas.check_and_count(recipients=1, **sender)
                time.sleep(hold)
            accepted += 1
        except quotas.QuotaExceeded:
            refused += 1
    print(json.dumps({"accepted": accepted, "refused": refused}), flush=True)


if __name__ == "__main__":
    main()
