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

    # The other process refuses the username too, even with the right password, and closes the connection.
    client = connect(two.submission, "127.0.0.5")
    assert auth_plain(client, user, PASSWORD)[0] == 421
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    # No address reached the threshold: another user from the same addresses still signs in.
    assert attempt(two.submission, "127.0.0.2", cast.b.mailbox.address, PASSWORD)[0] == 235

    # The owner and support see the lockout; support lifts it, and the next login works on either process.
    locked = AuthLockout.objects.get(kind="username")
    assert (locked.value, locked.customer, locked.failures) == (user, cast.a.customer, 3)
    assert list(lockouts_visible_to(cast.a.user)) == [locked]
    assert locked in lockouts_visible_to(cast.support)
    assert list(lockouts_visible_to(cast.b.user)) == []
    lockout_lift(actor=cast.support, lockout=locked, reason="customer confirmed by phone")
    client = connect(one.submission, "127.0.0.5")
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
