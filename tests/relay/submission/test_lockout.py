from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied

from accounts.models import AuditEntry
from accounts.services.credentials import credential_create
from relay.models import AuthFailure, AuthLockout
from relay.panel.selectors import lockouts_visible_to
from relay.panel.services import lockout_lift
from relay.submission import lockout

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.RELAY_AUTH_MAX_FAILURES = 3
    settings.RELAY_AUTH_FAILURE_WINDOW = 60
    settings.RELAY_AUTH_LOCKOUT_SECONDS = 120
    settings.RELAY_AUTH_DELAY_BASE = 0.5
    settings.RELAY_AUTH_DELAY_MAX = 4.0


def fail(ip, username, seconds=0, **kw):
    return lockout.record_failure(client_ip=ip, username=username, now=T0 + timedelta(seconds=seconds), **kw)


def is_locked(ip, username, seconds=0):
    return lockout.locked(client_ip=ip, username=username, now=T0 + timedelta(seconds=seconds))


def test_delay_doubles_with_each_failure_up_to_the_cap(db, settings):
    settings.RELAY_AUTH_MAX_FAILURES = 100
    delays = [fail("192.0.2.1", "who@example.test", seconds=i) for i in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_delay_follows_the_worse_of_address_and_username(db, settings):
    settings.RELAY_AUTH_MAX_FAILURES = 100
    assert fail("192.0.2.1", "a@example.test") == 0.5
    assert fail("192.0.2.2", "b@example.test") == 0.5
    assert fail("192.0.2.3", "b@example.test") == 1.0  # second for the username b@
    assert fail("192.0.2.1", "c@example.test") == 1.0  # second from the address .1
    assert fail("192.0.2.4", "b@example.test") == 2.0  # third for b@


def test_address_is_locked_after_threshold_whatever_the_usernames(db):
    fail("192.0.2.1", "a@example.test")
    fail("192.0.2.1", "b@example.test")
    assert is_locked("192.0.2.1", "z@example.test", 2) is None
    fail("192.0.2.1", "c@example.test", 2)
    found = is_locked("192.0.2.1", "z@example.test", 3)
    assert (found.kind, found.value, found.failures, found.customer) == ("address", "192.0.2.1", 3, None)
    assert found.locked_until == T0 + timedelta(seconds=122)
    assert is_locked("192.0.2.2", "z@example.test", 3) is None  # another address, another user: free
    assert lockout.locked(client_ip="192.0.2.1", username=None, now=T0 + timedelta(seconds=3)) == found


def test_username_is_slowed_not_locked_and_belongs_to_its_customer(cast):
    for i in range(3):
        fail(f"192.0.2.{i + 1}", "Info@Alpha.test")
    found = lockout.username_lockout("info@alpha.test", now=T0)
    assert (found.kind, found.value, found.customer) == ("username", "info@alpha.test", cast.a.customer)
    # Only the addresses that failed for it are refused for it; any other address may still log in (its owner).
    assert is_locked("192.0.2.1", "info@alpha.test") == found
    assert is_locked("198.51.100.7", "info@alpha.test") is None
    assert is_locked("192.0.2.1", "info@bravo.test") is None
    assert AuthLockout.objects.count() == 1  # no address reached the threshold
    # A failure while slowed refuses that address too, after the longest delay.
    assert fail("198.51.100.7", "info@alpha.test", 1) == 4.0
    assert is_locked("198.51.100.7", "info@alpha.test", 1) == found


def test_credential_username_lockout_belongs_to_its_customer(cast):
    credential = credential_create(actor=None, domain=cast.b.domain).credential
    for i in range(3):
        fail(f"192.0.2.{i + 1}", credential.username)
    assert lockout.username_lockout(credential.username, now=T0).customer == cast.b.customer


def test_customer_given_by_the_caller_is_used(cast):
    for i in range(3):
        fail(f"192.0.2.{i + 1}", "unknown@alpha.test", customer=cast.a.customer)
    assert lockout.username_lockout("unknown@alpha.test", now=T0).customer == cast.a.customer


def test_failures_outside_the_window_do_not_count(db):
    fail("192.0.2.1", "a@example.test", 0)
    fail("192.0.2.1", "a@example.test", 30)
    fail("192.0.2.1", "a@example.test", 61)  # the first has left the 60 s window
    assert is_locked("192.0.2.1", "a@example.test", 61) is None
    fail("192.0.2.1", "a@example.test", 62)
    assert is_locked("192.0.2.1", "a@example.test", 62) is not None


def test_lockout_ends_by_itself_and_counting_starts_afresh(db):
    for i in range(3):
        fail("192.0.2.1", "a@example.test", i)
    assert is_locked("192.0.2.1", "a@example.test", 121) is not None
    assert is_locked("192.0.2.1", "a@example.test", 122) is None
    fail("192.0.2.1", "a@example.test", 123)
    assert is_locked("192.0.2.1", "a@example.test", 123) is None


def test_failures_while_locked_do_not_make_a_second_lockout(db):
    for i in range(5):
        fail("192.0.2.1", "a@example.test", i)
    assert AuthLockout.objects.filter(kind="address").count() == 1
    assert AuthLockout.objects.filter(kind="username").count() == 1


def test_support_lifts_a_lockout_with_a_reason_in_the_audit_log(cast):
    for i in range(3):
        fail("192.0.2.1", "info@alpha.test", i)
    username_lock = AuthLockout.objects.get(kind="username")
    lifted = lockout_lift(actor=cast.support, lockout=username_lock, client_ip="203.0.113.9",
                          reason="customer called, printer fixed")
    assert lifted.lifted_by == cast.support and lifted.lifted_at is not None
    entry = AuditEntry.objects.get(action="lockout.lift")
    assert (entry.actor, entry.object_repr, entry.reason, entry.client_ip, entry.customer) == (
        cast.support, "username info@alpha.test", "customer called, printer fixed", "203.0.113.9", cast.a.customer)
    assert entry.before["lifted_at"] is None and entry.after["lifted_at"] is not None
    # The username is free from another address; the address itself is still locked.
    assert is_locked("192.0.2.50", "info@alpha.test", 3) is None
    assert is_locked("192.0.2.1", "someone@else.test", 3).kind == "address"


def test_after_a_lift_the_username_gets_the_full_threshold_again(cast):
    for i in range(3):
        fail(f"192.0.2.{i + 1}", "info@alpha.test", i)
    lockout_lift(actor=cast.support, lockout=AuthLockout.objects.get(), reason="known user",
                 now=T0 + timedelta(seconds=5))
    fail("192.0.2.9", "info@alpha.test", 10)
    fail("192.0.2.9", "info@alpha.test", 11)
    assert is_locked("192.0.2.10", "info@alpha.test", 12) is None


def test_lifting_twice_writes_one_audit_entry(cast):
    for i in range(3):
        fail(f"192.0.2.{i + 1}", "info@alpha.test", i)
    found = AuthLockout.objects.get()
    lockout_lift(actor=cast.support, lockout=found, reason="ok")
    lockout_lift(actor=cast.support, lockout=found, reason="ok")
    assert AuditEntry.objects.filter(action="lockout.lift").count() == 1


@pytest.mark.parametrize("who", ["a.user", "reseller_a_admin"])
def test_only_support_lifts(cast, who):
    for i in range(3):
        fail(f"192.0.2.{i + 1}", "info@alpha.test", i)
    actor = cast.a.user if who == "a.user" else cast.reseller_a_admin
    with pytest.raises(PermissionDenied):
        lockout_lift(actor=actor, lockout=AuthLockout.objects.get(), reason="let me in")
    assert AuthLockout.objects.get().lifted_at is None


def test_lockouts_visible_to_each_role(cast):
    for i in range(3):
        fail(f"192.0.2.{i + 1}", "info@alpha.test", i)
        fail(f"198.51.100.{i + 1}", "info@bravo.test", i)
        fail("203.0.113.1", f"nobody{i}@nowhere.test", i)
    alpha = AuthLockout.objects.get(value="info@alpha.test")
    bravo = AuthLockout.objects.get(value="info@bravo.test")
    address = AuthLockout.objects.get(kind="address")
    assert set(lockouts_visible_to(cast.support)) == {alpha, bravo, address}
    assert list(lockouts_visible_to(cast.a.user)) == [alpha]
    assert list(lockouts_visible_to(cast.b.user)) == [bravo]
    assert list(lockouts_visible_to(cast.reseller_a_admin)) == [alpha]
    assert list(lockouts_visible_to(cast.reseller_b_admin)) == [bravo]
    assert list(lockouts_visible_to(cast.direct.user)) == []


def test_active_lockouts_leave_out_lifted_and_expired(cast):
    for i in range(3):
        fail("192.0.2.1", f"u{i}@example.test", i)
        fail("192.0.2.2", f"v{i}@example.test", i)
    first, second = AuthLockout.objects.order_by("value")
    lockout_lift(actor=cast.support, lockout=first, reason="ok")
    assert list(lockout.active_lockouts(now=T0 + timedelta(seconds=5))) == [second]
    assert list(lockout.active_lockouts(now=T0 + timedelta(seconds=200))) == []


def test_purge_keeps_failures_inside_the_window(db):
    fail("192.0.2.1", "a@example.test", 0)
    fail("192.0.2.1", "b@example.test", 50)
    assert lockout.purge_old_failures(now=T0 + timedelta(seconds=100)) == 1
    assert list(AuthFailure.objects.values_list("username", flat=True)) == ["b@example.test"]


def test_purge_runs_from_the_beat_schedule(db):
    from hostingmail.celery import app
    from relay.submission.tasks import purge_old_auth_failures

    app.loader.import_default_modules()
    name = "relay.lockout_tasks.purge_old_auth_failures"
    assert name in {entry["task"] for entry in app.conf.beat_schedule.values()} and name in app.tasks
    lockout.record_failure(client_ip="192.0.2.1", username="a@example.test", now=T0 - timedelta(days=1))
    assert purge_old_auth_failures() == 1


def test_every_spelling_of_an_address_is_one_key(db, settings):
    settings.RELAY_AUTH_MAX_FAILURES = 100
    spellings = ["victim@c1.test", "victim@c1.test.", "victim@c1.test...", "<victim@c1.test>", " Victim@C1.Test ",
                 "<VICTIM@c1.test.>"]
    assert {lockout.normalize_username(s) for s in spellings} == {"victim@c1.test"}
    assert lockout.normalize_username("info@bücher.test.") == "info@xn--bcher-kva.test"
    delays = [fail(f"192.0.2.{n}", spelling) for n, spelling in enumerate(spellings, start=1)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # the username's count grows whatever the spelling


def test_the_delay_stops_growing_at_its_ceiling_however_many_failures(settings):
    """Found by the 20 000-session fuzz run: past ~1 000 failures 2 ** n no longer fit a float (451 4.3.0)."""
    settings.RELAY_AUTH_DELAY_BASE, settings.RELAY_AUTH_DELAY_MAX = 0.25, 8.0
    assert [lockout.delay_for(n) for n in (0, 1, 2, 6, 1100, 10**6)] == [0.0, 0.25, 0.5, 8.0, 8.0, 8.0]
