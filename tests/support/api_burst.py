"""Another API process, for rate-limit tests: `python -m tests.support.api_burst <key> <count> <path> [<clock>]`
sends that many requests with the key through Django's request handling and prints their statuses as JSON; with a
clock (Unix time), the rate limit's windows are counted at that stopped time. Started with
tests.support.relays.child_env, it opens the test's database and whatever cache CACHE_URL names."""

import json
import sys

import django


def main() -> None:
    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host name is allowed
    if len(sys.argv) > 4:
        from hostingmail.api.throttling import ApiKeyThrottle

        clock = float(sys.argv[4])
        ApiKeyThrottle.timer = staticmethod(lambda: clock)
    secret, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    print(json.dumps([client.get(path).status_code for _ in range(count)]))


if __name__ == "__main__":
    main()
