"""The verified-login cache (relay.models.VerifiedLogin): a mailbox password that verified once costs no Argon2
again, in any relay process, after a restart too; a change to the account invalidates it at once."""

import hashlib
import hmac

import pytest
from prometheus_client import REGISTRY

from accounts.services.credentials import credential_create, credential_revoke
from accounts.services.mailboxes import mailbox_delete, mailbox_set_password, mailbox_update
from accounts.services.suspension import restore, suspend
from relay.models import VerifiedLogin
from relay.submission import auth
from tests.support import logins
from tests.support.factories import PASSWORD
from tests.support.smtp import auth_plain, submission_client

pytestmark = pytest.mark.django_db(transaction=True)

INVALID = (535, b"5.7.8 Authentication credentials invalid")
OK = (235, b"2.7.0 Authentication successful")
NEW_PASSWORD = "a brand new password"


def try_login(port: int, user: str, password: str) -> tuple[int, bytes]:
    with submission_client(port) as client:
        return auth_plain(client, user, password)


def checks(process) -> dict[str, int]:
    """How the relay process checked the AUTHs it was sent, by method."""
    return {method: int(process.metric(f'hostingmail_smtp_auth_checks_total{{method="{method}"}}'))
            for method in ("argon2", "cached", "hmac")}


def argon2_here() -> float:
    return REGISTRY.get_sample_value("hostingmail_smtp_auth_checks_total", {"method": "argon2"}) or 0.0


def test_a_login_seen_by_one_process_costs_no_argon2_in_another_nor_after_a_restart(relay_process, login):
    first, second = relay_process(), relay_process()
    assert try_login(first.submission, *login) == OK
    assert checks(first) == {"argon2": 1, "cached": 0, "hmac": 0}
    assert try_login(second.submission, *login) == OK
    assert checks(second) == {"argon2": 0, "cached": 1, "hmac": 0}  # the other process's verification
    assert first.stop() == 0 and second.stop() == 0
    restarted = relay_process()
    assert [try_login(restarted.submission, *login) for _ in range(3)] == [OK] * 3
    assert checks(restarted) == {"argon2": 0, "cached": 3, "hmac": 0}
    # A wrong password is never answered from the cache.
    assert try_login(restarted.submission, login[0], "wrong password!") == INVALID
    assert checks(restarted)["argon2"] == 1


def _password_changed(cast):
    mailbox_set_password(actor=None, mailbox=cast.a.mailbox, password=NEW_PASSWORD)


CHANGES = {
    "password changed": _password_changed,
    "mailbox disabled": lambda cast: mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=False),
    "SMTP access off": lambda cast: mailbox_update(actor=None, mailbox=cast.a.mailbox, smtp_enabled=False),
    "mailbox suspended": lambda cast: suspend(actor=None, obj=cast.a.mailbox, reason="test"),
    "domain suspended": lambda cast: suspend(actor=None, obj=cast.a.domain, reason="test"),
    "customer suspended": lambda cast: suspend(actor=None, obj=cast.a.customer, reason="unpaid"),
    "reseller suspended": lambda cast: suspend(actor=None, obj=cast.reseller_a, reason="unpaid"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_to_the_account_invalidates_its_cached_login_at_once(relay_process, cast, login, change):
    process = relay_process()
    assert try_login(process.submission, *login) == OK
    assert try_login(process.submission, *login) == OK
    assert checks(process)["cached"] == 1
    CHANGES[change](cast)
    assert try_login(process.submission, *login) == INVALID
    # The refusal took the slow hash, as for any account that may not log in: it tells nothing by its timing.
    assert checks(process) == {"argon2": 2, "cached": 1, "hmac": 0}


def test_after_a_password_change_the_new_password_is_verified_then_remembered(relay_process, cast, login):
    process = relay_process()
    assert try_login(process.submission, *login) == OK
    mailbox_set_password(actor=None, mailbox=cast.a.mailbox, password=NEW_PASSWORD)
    assert try_login(process.submission, login[0], PASSWORD) == INVALID
    assert [try_login(process.submission, login[0], NEW_PASSWORD) for _ in range(2)] == [OK, OK]
    assert checks(process) == {"argon2": 3, "cached": 1, "hmac": 0}


def test_a_restored_account_logs_in_from_the_cache_again(relay_process, cast, login):
    process = relay_process()
    assert try_login(process.submission, *login) == OK
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    assert try_login(process.submission, *login) == INVALID
    restore(actor=None, obj=cast.a.customer, reason="paid")
    assert try_login(process.submission, *login) == OK
    assert checks(process) == {"argon2": 2, "cached": 1, "hmac": 0}


def test_a_revoked_credential_is_refused_at_once(relay_process, cast):
    process = relay_process()
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    assert try_login(process.submission, new.credential.username, new.secret) == OK
    credential_revoke(actor=None, credential=new.credential)
    assert try_login(process.submission, new.credential.username, new.secret) == INVALID
    assert checks(process) == {"argon2": 0, "cached": 0, "hmac": 2}  # a credential's secret never takes Argon2


def test_the_entry_is_an_hmac_under_a_key_outside_the_database(cast, settings):
    principal = logins.check_login(username=cast.a.mailbox.address, password=PASSWORD, client_ip="127.0.0.1").principal
    assert principal is not None
    stored = cast.a.mailbox.password_hash
    entry = VerifiedLogin.objects.get(mailbox=cast.a.mailbox)
    key = settings.RELAY_LOGIN_CACHE_SECRET.encode()
    assert entry.mac == hmac.new(key, f"{stored}\0{PASSWORD}".encode(), hashlib.sha256).hexdigest()
    # Nothing a guess can be tested against without the key: no unkeyed digest of the password.
    for unkeyed in (PASSWORD.encode(), f"{stored}\0{PASSWORD}".encode(), f"{stored}{PASSWORD}".encode()):
        assert entry.mac not in (hashlib.sha256(unkeyed).hexdigest(), hashlib.blake2b(unkeyed).hexdigest())
    assert PASSWORD not in entry.mac
    # A new key empties the cache: the next login takes the slow hash and remembers under the new key.
    before = argon2_here()
    assert logins.authenticate(cast.a.mailbox.address, PASSWORD, "127.0.0.1") is not None
    assert argon2_here() == before
    settings.RELAY_LOGIN_CACHE_SECRET = "another key"
    assert logins.check_login(username=cast.a.mailbox.address, password=PASSWORD,
                              client_ip="127.0.0.1").principal is not None
    assert argon2_here() == before + 1
    assert VerifiedLogin.objects.get(mailbox=cast.a.mailbox).mac == hmac.new(
        b"another key", f"{stored}\0{PASSWORD}".encode(), hashlib.sha256).hexdigest()


def test_a_mailbox_deleted_before_its_entry_is_written_fails_no_login(cast):
    gone = logins.verified(cast.a.mailbox.address, PASSWORD, "127.0.0.1")
    kept = logins.verified(cast.b.mailbox.address, PASSWORD, "127.0.0.1")
    mailbox_delete(actor=None, mailbox=cast.a.mailbox)
    assert auth.succeeded_many([(gone, "127.0.0.1"), (kept, "127.0.0.1")]) == [None, None]
    assert list(VerifiedLogin.objects.values_list("mailbox_id", flat=True)) == [cast.b.mailbox.pk]
