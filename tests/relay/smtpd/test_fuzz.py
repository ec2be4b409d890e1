"""Grammar fuzzing of the relay: seeded random walks over SMTP (issue 17, point 12).

HM_FUZZ_SESSIONS and HM_FUZZ_SEED change the run (bench/fuzz_smtp.py runs 20 000 sessions). The default is
enough sessions to take every branch of the walk (tests/support/fuzz.py's GRAMMAR, checked below) several times
over; more sessions try more combinations, for a deeper run by hand.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from relay.models import QueuedMessage
from tests.support.fuzz import GRAMMAR, Findings, Walker

pytestmark = pytest.mark.django_db(transaction=True)

# 500 sessions (seed 17) take the walk's rarest branch, a cancelled AUTH, 7 times (2 500 took it 34 times).
SESSIONS = int(os.environ.get("HM_FUZZ_SESSIONS", "500"))
SEED = int(os.environ.get("HM_FUZZ_SEED", "17"))
# Client threads. More than two do not shorten the walk: it is bound by the relay's CPU, not by waiting.
CLIENTS = int(os.environ.get("HM_FUZZ_CLIENTS", "2"))


# Relay settings for the walk: wrong passwords and many connections from loopback are part of it.
RELAY_ENV = {"RELAY_AUTH_MAX_FAILURES": "1000000", "RELAY_AUTH_DELAY_BASE": "0", "RELAY_AUTH_DELAY_MAX": "0",
             "RELAY_MAX_CONNECTIONS_PER_CLIENT": "0", "RELAY_CONNECTION_RATE_PER_CLIENT": "0",
             "RELAY_TLS_HANDSHAKE_TIMEOUT": "2"}


# The default's 500 sessions take about 20 s on two idle cores; thousands (HM_FUZZ_SESSIONS) take minutes.
@pytest.mark.timeout(900)
def test_random_walks_get_well_formed_replies_and_nothing_is_accepted_unseen(relay_process, login):
    # A relay process of its own: the walk's client threads do not share an interpreter lock with it.
    relay = relay_process(env=RELAY_ENV)
    walker_args = dict(submission=relay.submission, smtps=relay.smtps, login=login, timeout=8.0)
    started = time.monotonic()

    def walk(client: int) -> Findings:
        findings, walker = Findings(), Walker(**walker_args)
        for number in range(client, SESSIONS, CLIENTS):
            walker.session(SEED * 1_000_003 + number, findings)
        return findings

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(walk, range(CLIENTS)))
    findings = Findings()
    for result in results:
        findings.merge(result)
    elapsed = time.monotonic() - started
    assert relay.stop() == 0  # lets sessions still in DATA finish
    print(f"{findings.sessions} sessions in {elapsed:.1f} s, {findings.accepted} accepted "
          f"({findings.good_messages} good messages), replies {dict(findings.replies)}, "
          f"branches {sorted(findings.steps.items(), key=lambda item: item[1])}")
    assert findings.sessions == SESSIONS
    assert sorted(GRAMMAR - set(findings.steps)) == [], "branches of the walk not taken"
    assert sorted(set(findings.steps) - GRAMMAR) == [], "branches missing from GRAMMAR"
    assert dict(findings.problems) == {}, findings.examples
    serious = [line for line in relay.log().splitlines()
               if ("Traceback" in line or " ERROR " in line or " WARNING " in line or "CRITICAL" in line)
               and "kombu.connection No hostname was supplied" not in line]  # the test broker's configuration
    assert serious[:20] == []
    assert QueuedMessage.objects.count() == findings.accepted
    assert findings.accepted > 0
