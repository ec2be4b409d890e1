"""A racer (tests/support/racing.py) failing AUTH: `lockout_racer CLIENT_IP USERNAME ATTEMPTS`.

Records ATTEMPTS failed logins through relay.submission.lockout.record_failure; reports {"failures": n}.
"""

import sys

from tests.support import racing


def main() -> None:
    client_ip, username, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3])
    racing.start()
    from relay.submission import lockout

    racing.go()
    for _ in range(attempts):
        lockout.record_failure(client_ip=client_ip, username=username)
    racing.report({"failures": attempts})


if __name__ == "__main__":
    main()
