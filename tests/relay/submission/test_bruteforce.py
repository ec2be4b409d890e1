"""Brute-force lockout across two real relay processes sharing one database.

Clients connect from different loopback addresses (127.0.0.x) so the per-address and per-username counts can
be told apart.
"""

import smtplib
import time

import pytest
from django.db import connection

from relay.models import AuthFailure, AuthLockout
from relay.panel.selectors import lockouts_visible_to
from relay.panel.services import lockout_lift
from tests.support.factories import PASSWORD
from tests.support.smtp import HOST, auth_plain, client_context, message, send

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = {"RELAY_AUTH_MAX_FAILURES": "3", "RELAY_AUTH_FAILURE_WINDOW": "600", "RELAY_AUTH_LOCKOUT_SECONDS": "600",
          "RELAY_AUTH_DELAY_BASE": "0.3", "RELAY_AUTH_DELAY_MAX": "0.6"}


def connect(port: int, source: str) -> smtplib.SMTP:
    client = smtplib.SMTP(HOST, port, local_hostname="client.test", timeout=20, source_address=(source, 0))
    client.starttls(context=client_context())
    client.ehlo("client.test")
    return client


def attempt(port: int, source: str, user: str, password: str) -> tuple[int, str, float]:
    """One AUTH PLAIN on a fresh connection: (code, text, seconds the answer took)."""
    client = connect(port, source)
    started = time.monotonic()
    try:
        code, text = auth_plain(client, user, password)
    except smtplib.SMTPServerDisconnected:
        code, text = 0, b"disconnected"
    elapsed = time.monotonic() - started
    try:
        client.close()
    except OSError:
        pass
    return code, text.decode(), elapsed


def test_lockout_is_shared_by_relay_processes_and_lifted_by_support(relay_process, cast):
    one, two = relay_process(env=LIMITS), relay_process(env=LIMITS)
    user = cast.a.mailbox.address

    # Failures for one username from three addresses, on both processes; the delay grows with the count.
    code, text, first = attempt(one.submission, "127.0.0.2", user, "wrong one")
    assert (code, text) == (535, "5.7.8 Authentication credentials invalid")
    code, _, second = attempt(two.submission, "127.0.0.3", user, "wrong two")
    assert code == 535
    assert first >= 0.3 and second >= 0.6
    code, text, _ = attempt(one.submission, "127.0.0.4", user, "wrong three")
    assert (code, text) == (421, "4.7.0 Too many failed authentication attempts, try again later")

    # The username is slowed on the other process too: an address that failed for it is refused even with the
    # right password, and the connection is closed ...
    client = connect(two.submission, "127.0.0.2")
    assert auth_plain(client, user, PASSWORD)[0] == 421
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    # ... but the owner, from an address that has not been failing, is never locked out.
    assert attempt(two.submission, "127.0.0.5", user, PASSWORD)[0] == 235
    # No address reached the threshold: another user from the same addresses still signs in.
    assert attempt(two.submission, "127.0.0.2", cast.b.mailbox.address, PASSWORD)[0] == 235

    # The owner and support see the lockout; support lifts it, and the failing addresses may log in again.
    locked = AuthLockout.objects.get(kind="username")
    assert (locked.value, locked.customer, locked.failures) == (user, cast.a.customer, 3)
    assert list(lockouts_visible_to(cast.a.user)) == [locked]
    assert locked in lockouts_visible_to(cast.support)
    assert list(lockouts_visible_to(cast.b.user)) == []
    lockout_lift(actor=cast.support, lockout=locked, reason="customer confirmed by phone")
    client = connect(one.submission, "127.0.0.2")
    assert auth_plain(client, user, PASSWORD)[0] == 235
    assert send(client, sender=user, recipients=["bob@example.org"], data=message(sender=user))[-1][0] == 250
    client.quit()


def test_address_lockout_whatever_the_usernames(relay_process, cast):
    one, two = relay_process(env=LIMITS), relay_process(env=LIMITS)
    assert attempt(one.submission, "127.0.0.7", "nobody@alpha.test", "x")[0] == 535
    assert attempt(two.submission, "127.0.0.7", "smtp-000000000000", "x")[0] == 535
    assert attempt(one.submission, "127.0.0.7", "somebody@bravo.test", "x")[0] == 421
    # The address is refused on both processes, even for a good login; another address is not.
    assert attempt(two.submission, "127.0.0.7", cast.a.mailbox.address, PASSWORD)[0] == 421
    assert attempt(one.submission, "127.0.0.8", cast.a.mailbox.address, PASSWORD)[0] == 235
    locked = AuthLockout.objects.get()
    assert (locked.kind, locked.value, locked.customer) == ("address", "127.0.0.7", None)
    assert list(lockouts_visible_to(cast.a.user)) == []  # support's business only
    lockout_lift(actor=cast.support, lockout=locked, reason="office NAT")
    assert attempt(two.submission, "127.0.0.7", cast.a.mailbox.address, PASSWORD)[0] == 235


def test_successful_logins_do_not_count(relay_process, cast):
    one, two = relay_process(env=LIMITS), relay_process(env=LIMITS)
    user = cast.a.mailbox.address
    assert attempt(one.submission, "127.0.0.9", user, "typo")[0] == 535
    assert attempt(two.submission, "127.0.0.9", user, "typo")[0] == 535
    for port in (one.submission, two.submission, one.submission):
        assert attempt(port, "127.0.0.9", user, PASSWORD)[0] == 235
    assert AuthFailure.objects.count() == 2
    assert not AuthLockout.objects.exists()


def test_failures_racing_on_several_processes_make_one_lockout_each(cast):
    from tests.support import racing

    processes = 3 if connection.vendor == "postgresql" else 2
    results = racing.race([["tests.support.lockout_racer", "192.0.2.77", "info@alpha.test", "6"]] * processes,
                          RELAY_AUTH_MAX_FAILURES="3")
    assert sum(r["failures"] for r in results) == AuthFailure.objects.count() == 6 * processes
    assert sorted(AuthLockout.objects.values_list("kind", "value")) == [
        ("address", "192.0.2.77"), ("username", "info@alpha.test")]
    assert AuthLockout.objects.get(kind="username").customer == cast.a.customer


# --- the attacks of issue 17, against a relay in this process ------------------------------------------------


@pytest.fixture
def small_limits(settings):
    settings.RELAY_AUTH_MAX_FAILURES = 3
    settings.RELAY_AUTH_DELAY_BASE = settings.RELAY_AUTH_DELAY_MAX = 0.001


def test_wrong_guesses_from_many_addresses_never_lock_the_owner_out(relay, cast, small_limits):
    user = cast.a.mailbox.address
    # Two wrong guesses from each of ten addresses: each stays below the address limit.
    for n in range(2, 12):
        for _ in range(2):
            assert attempt(relay.submission, f"127.0.0.{n}", user, "guess")[0] in (535, 421)
    # The username is slowed and the lockout shows in the panel ...
    locked = AuthLockout.objects.get(kind="username", lifted_at=None)
    assert (locked.value, locked.customer) == (user, cast.a.customer)
    assert list(lockouts_visible_to(cast.a.user)) == [locked]
    # ... but the owner's right password from an address that has not been failing still gets 235.
    assert attempt(relay.submission, "127.0.0.50", user, PASSWORD)[0] == 235
    client = connect(relay.submission, "127.0.0.51")
    assert auth_plain(client, user, PASSWORD)[0] == 235
    assert send(client, sender=user, recipients=["bob@example.org"], data=message(sender=user))[-1][0] == 250
    client.quit()
    # While it is slowed, an address that has been failing for it is refused before its password is checked,
    # and a fresh address gets one guess.
    assert attempt(relay.submission, "127.0.0.11", user, PASSWORD)[0] == 421
    assert attempt(relay.submission, "127.0.0.60", user, "guess")[0] == 421
    assert attempt(relay.submission, "127.0.0.60", user, PASSWORD)[0] == 421
    assert AuthFailure.objects.filter(client_ip="127.0.0.60").count() == 1
    # Support lifts it: the failing addresses are back to the address limit alone.
    lockout_lift(actor=cast.support, lockout=locked, reason="attack over")
    assert attempt(relay.submission, "127.0.0.11", user, PASSWORD)[0] == 235


def test_spellings_of_one_address_count_against_one_key(relay, cast, small_limits):
    user = cast.a.mailbox.address
    spellings = [f"{user}.", f"{user}...", f"<{user}>", user.upper(), f"<{user}.>"]
    for n, spelling in enumerate(spellings, start=2):
        assert attempt(relay.submission, f"127.0.0.{n}", spelling, "guess")[0] in (535, 421)
    assert set(AuthFailure.objects.values_list("username", flat=True)) == {user}
    assert AuthLockout.objects.get(kind="username").value == user
    # Each spelling is the same slowed username: an address that failed with one is refused with another.
    for n, spelling in enumerate(spellings, start=2):
        assert attempt(relay.submission, f"127.0.0.{n}", user, PASSWORD)[0] == 421
    assert attempt(relay.submission, "127.0.0.70", f"<{user}.>", PASSWORD)[0] == 235


def test_a_burst_from_one_address_is_hashed_at_most_up_to_the_limit(relay, cast, settings, monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from accounts import hashing

    settings.RELAY_AUTH_MAX_FAILURES = 5
    settings.RELAY_AUTH_DELAY_BASE = settings.RELAY_AUTH_DELAY_MAX = 0.001
    hashed, lock = [], threading.Lock()
    check_hash = hashing.check_hash

    def counting_hash(password, stored):  # check_dummy (an unknown user) comes through here too
        with lock:
            hashed.append(password)
        return check_hash(password, stored)

    monkeypatch.setattr(hashing, "check_hash", counting_hash)
    burst = threading.Barrier(41)

    def wrong(n):
        client = connect(relay.submission, "127.0.0.80")
        burst.wait(timeout=60)
        try:
            return auth_plain(client, f"user{n}@alpha.test", "guess")[0]
        except smtplib.SMTPServerDisconnected:
            return 0
        finally:
            client.close()

    def other_user():
        client = connect(relay.submission, "127.0.0.81")
        burst.wait(timeout=60)
        started = time.monotonic()
        code = auth_plain(client, cast.b.mailbox.address, PASSWORD)[0]
        client.quit()
        return code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=41) as pool:
        wrongs = [pool.submit(wrong, n) for n in range(40)]
        other = pool.submit(other_user)
        codes = [future.result(timeout=120) for future in wrongs]
        other_code, other_seconds = other.result(timeout=120)
    assert other_code == 235, other_seconds
    guesses = [password for password in hashed if password == "guess"]
    assert len(guesses) <= 5, len(guesses)
    assert set(codes) <= {535, 421, 0} and codes.count(535) <= len(guesses)
    assert AuthFailure.objects.filter(client_ip="127.0.0.80").count() == len(guesses)
