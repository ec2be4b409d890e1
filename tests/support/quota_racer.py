"""A racer (tests/support/racing.py) sending through check_and_count: `quota_racer KIND PK ATTEMPTS HOLD`.

Tries ATTEMPTS sends of one recipient each, each in its own transaction kept open HOLD seconds after the count
(as the relay's is while it stores the message); reports {"accepted": n, "refused": n}.
"""

import sys
import time

from tests.support import racing


def main() -> None:
    kind, pk, attempts, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    racing.start()
    from django.db import transaction

    from accounts import quotas
    from accounts.models import Mailbox, SmtpCredential
    from tests.support.quotas import check_and_count

    sender = {"mailbox": Mailbox(pk=pk)} if kind == "mailbox" else {"credential": SmtpCredential(pk=pk)}
    racing.go()
    accepted = refused = 0
    for _ in range(attempts):
        try:
            with transaction.atomic():
                check_and_count(recipients=1, **sender)
                time.sleep(hold)
            accepted += 1
        except quotas.QuotaExceeded:
            refused += 1
    racing.report({"accepted": accepted, "refused": refused})


if __name__ == "__main__":
    main()
