"""App credentials' secrets are checked by their keyed fast hash; one stored in Argon2 before, or under an earlier
key, is converted at its next successful login."""

import pytest
from prometheus_client import REGISTRY

from accounts import hashing
from accounts.models import SmtpCredential
from accounts.services.credentials import credential_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.suspension import suspend
from tests.support import logins
from tests.support.smtp import auth_plain, message, send, submission_client

pytestmark = pytest.mark.django_db(transaction=True)

INVALID = (535, b"5.7.8 Authentication credentials invalid")
OK = (235, b"2.7.0 Authentication successful")


def checked(method: str) -> float:
    return REGISTRY.get_sample_value("hostingmail_smtp_auth_checks_total", {"method": method}) or 0.0


def legacy_credential(cast):
    """A credential as stored before the keyed hash: its secret in Argon2."""
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    SmtpCredential.objects.filter(pk=new.credential.pk).update(secret_hash=hashing.make_hash(new.secret))
    return new.credential.username, new.secret


def stored(username: str) -> str:
    return SmtpCredential.objects.get(username=username).secret_hash


def try_login(port: int, user: str, password: str) -> tuple[int, bytes]:
    with submission_client(port) as client:
        return auth_plain(client, user, password)


def test_an_argon2_credential_is_converted_at_its_next_successful_login(relay, cast):
    username, secret = legacy_credential(cast)
    assert try_login(relay.submission, username, "not the secret") == INVALID
    assert stored(username).startswith("{ARGON2ID}")  # a failure converts nothing
    argon2 = checked("argon2")
    assert try_login(relay.submission, username, secret) == OK
    assert checked("argon2") == argon2 + 1
    assert stored(username) == hashing.make_secret_hash(secret)
    hmac_checks = checked("hmac")
    assert try_login(relay.submission, username, secret) == OK
    assert checked("argon2") == argon2 + 1 and checked("hmac") == hmac_checks + 1


def test_a_credential_that_may_not_log_in_is_not_converted(relay, cast):
    username, secret = legacy_credential(cast)
    suspend(actor=None, obj=SmtpCredential.objects.get(username=username), reason="test")
    assert try_login(relay.submission, username, secret) == INVALID
    assert stored(username).startswith("{ARGON2ID}")


def test_a_session_that_converted_its_credential_keeps_its_login(relay, cast):
    username, secret = legacy_credential(cast)
    with submission_client(relay.submission, auth=(username, secret)) as client:
        # Another change of the customer moves its login generation: the session's login is looked up again, and
        # it is the converted hash that it finds.
        other = mailbox_create(actor=None, domain=cast.a.domain, local_part="second", password="yet another password")
        generation = cast.a.customer.login_generation
        suspend(actor=None, obj=other, reason="test")
        cast.a.customer.refresh_from_db()
        assert cast.a.customer.login_generation > generation
        replies = send(client, sender=cast.a.mailbox.address, recipients=["bob@example.org"],
                       data=message(sender=cast.a.mailbox.address))
    assert replies[-1][0] == 250, replies
    assert stored(username).startswith(hashing.SECRET_SCHEME)


def test_a_new_key_takes_over_while_the_old_one_still_verifies(cast, settings):
    new = credential_create(actor=None, domain=cast.a.domain)
    username, under_old = new.credential.username, new.credential.secret_hash
    settings.SMTP_CREDENTIAL_HASH_SECRET = "the new key"
    assert logins.authenticate(username, new.secret, "127.0.0.1") is None  # the old key is no longer listed
    settings.SMTP_CREDENTIAL_HASH_PREVIOUS_SECRETS = [f"smtp-credential:{settings.SECRET_KEY}"]
    assert logins.check_login(username=username, password=new.secret, client_ip="127.0.0.1").principal is not None
    under_new = stored(username)
    assert under_new != under_old and hashing.secret_hash_is_current(under_new)
    settings.SMTP_CREDENTIAL_HASH_PREVIOUS_SECRETS = []
    assert logins.authenticate(username, new.secret, "127.0.0.1") is not None
    assert logins.authenticate(username, "not the secret", "127.0.0.1") is None
