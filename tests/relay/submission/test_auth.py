"""SMTP AUTH: every refusal is the same 535 5.7.8, nothing is cached, the database decides at each connection."""

import asyncio
import base64
import smtplib
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from accounts.models import SmtpCredential
from accounts.services.credentials import credential_create, credential_revoke
from accounts.services.mailboxes import mailbox_create, mailbox_set_password
from accounts.services.suspension import restore, suspend
from relay import loop_reads
from relay.submission import auth
from tests.support import logins
from tests.support.loops import in_thread
from tests.support.factories import PASSWORD, make_tenant
from tests.support.smtp import auth_plain, smtps_client, submission_client, swaks

pytestmark = pytest.mark.django_db(transaction=True)

INVALID = (535, b"5.7.8 Authentication credentials invalid")
OK = (235, b"2.7.0 Authentication successful")


def try_login(port: int, user: str, password: str, authzid: str = "") -> tuple[int, bytes]:
    with submission_client(port) as client:
        return auth_plain(client, user, password, authzid)


def new_credential(tenant, **options):
    return credential_create(actor=None, domain=tenant.domain, **options)


@pytest.fixture
def refusals(settings):
    # Failures are answered after a growing delay; keep it short here and stay below the lockout.
    settings.RELAY_AUTH_DELAY_BASE = 0.001
    settings.RELAY_AUTH_DELAY_MAX = 0.001
    settings.RELAY_AUTH_MAX_FAILURES = 100


def test_mailbox_address_and_password_authenticate(relay, cast):
    assert try_login(relay.submission, "info@alpha.test", PASSWORD) == OK
    assert try_login(relay.submission, "INFO@Alpha.Test", PASSWORD) == OK


def test_mailbox_on_a_unicode_domain_logs_in_with_either_form(relay, transactional_db):
    tenant = make_tenant("Umlaut", "bücher.test")
    assert tenant.domain.name == "xn--bcher-kva.test"
    assert try_login(relay.submission, "info@bücher.test", PASSWORD) == OK
    assert try_login(relay.submission, "info@xn--bcher-kva.test", PASSWORD) == OK


def test_credential_authenticates_and_records_last_use(relay, cast):
    new = new_credential(cast.a, mailbox=cast.a.mailbox)
    assert try_login(relay.submission, new.credential.username, new.secret) == OK
    new.credential.refresh_from_db()
    assert new.credential.last_used_ip == "127.0.0.1"
    assert timezone.now() - new.credential.last_used_at < timedelta(minutes=1)


def test_last_use_is_written_at_most_once_a_minute_from_one_address(relay, cast):
    new = new_credential(cast.a, mailbox=cast.a.mailbox)
    credential = SmtpCredential.objects.filter(pk=new.credential.pk)
    lately = timezone.now() - auth.LAST_USE_EVERY / 2
    credential.update(last_used_at=lately, last_used_ip="127.0.0.1")
    assert try_login(relay.submission, new.credential.username, new.secret) == OK
    assert credential.get().last_used_at == lately, "written lately from this address: not written again"

    credential.update(last_used_ip="192.0.2.7")
    assert try_login(relay.submission, new.credential.username, new.secret) == OK
    assert credential.get().last_used_ip == "127.0.0.1", "another address is written at once"
    assert credential.get().last_used_at > lately

    long_ago = timezone.now() - auth.LAST_USE_EVERY - timedelta(seconds=1)
    credential.update(last_used_at=long_ago)
    assert try_login(relay.submission, new.credential.username, new.secret) == OK
    assert timezone.now() - credential.get().last_used_at < auth.LAST_USE_EVERY


def test_last_uses_of_several_logins_are_one_transaction(cast):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    credentials = [new_credential(cast.a, mailbox=cast.a.mailbox) for _ in range(3)]
    verified = [logins.verified(c.credential.username, c.secret, "192.0.2.1") for c in credentials]
    credentials = [c.credential for c in credentials]
    with CaptureQueriesContext(connection) as queries:
        assert auth.succeeded_many([(v, f"192.0.2.{n}") for n, v in enumerate(verified)]) == [None] * 3
    writes = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"]]
    assert len(writes) == 1 and writes[0].startswith("3 times: UPDATE"), "one statement run for every login"
    for n, credential in enumerate(credentials):
        credential.refresh_from_db()
        assert credential.last_used_ip == f"192.0.2.{n}"
        assert timezone.now() - credential.last_used_at < timedelta(minutes=1)


def test_auth_login_mechanism(relay, cast):
    with submission_client(relay.submission) as client:
        client.user, client.password = "info@alpha.test", PASSWORD
        assert client.auth("LOGIN", client.auth_login) == OK


def test_every_refusal_is_the_same_535(relay, cast, refusals):
    a = cast.a
    wrong_network = new_credential(a, allowed_networks="192.0.2.0/24")
    disabled = new_credential(a)
    suspend(actor=None, obj=disabled.credential, reason="test")
    revoked = new_credential(a)
    credential_revoke(actor=None, credential=revoked.credential)
    expired = new_credential(a, expires_at=timezone.now() + timedelta(seconds=30))
    SmtpCredential.objects.filter(pk=expired.credential.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    b = cast.b  # a suspended customer
    b_credential = new_credential(b)
    suspend(actor=None, obj=b.customer, reason="test")
    d = cast.direct  # a suspended domain
    d_credential = new_credential(d)
    suspend(actor=None, obj=d.domain, reason="test")
    no_smtp = mailbox_create(actor=None, domain=a.domain, local_part="nosmtp", password=PASSWORD)
    disabled_box = mailbox_create(actor=None, domain=a.domain, local_part="off", password=PASSWORD,
                                  smtp_enabled=True)
    suspend(actor=None, obj=disabled_box, reason="test")
    cases = {
        "wrong password": ("info@alpha.test", "wrong password!"),
        "unknown mailbox": ("nobody@alpha.test", PASSWORD),
        "unknown domain": ("info@unknown.test", PASSWORD),
        "unknown credential": ("smtp-000000000000", "whatever-secret"),
        "wrong secret": (wrong_network.credential.username, "not the secret"),
        "outside allow-list": (wrong_network.credential.username, wrong_network.secret),
        "disabled credential": (disabled.credential.username, disabled.secret),
        "revoked credential": (revoked.credential.username, revoked.secret),
        "expired credential": (expired.credential.username, expired.secret),
        "suspended customer (credential)": (b_credential.credential.username, b_credential.secret),
        "suspended customer (mailbox)": (b.mailbox.address, PASSWORD),
        "suspended domain (credential)": (d_credential.credential.username, d_credential.secret),
        "suspended domain (mailbox)": (d.mailbox.address, PASSWORD),
        "SMTP access off": ("nosmtp@alpha.test", PASSWORD),
        "disabled mailbox": ("off@alpha.test", PASSWORD),
        "empty password": ("info@alpha.test", ""),
    }
    replies = {case: try_login(relay.submission, *login) for case, login in cases.items()}
    assert replies == {case: INVALID for case in cases}


def test_unknown_user_costs_a_dummy_hash_of_its_kind(cast, monkeypatch):
    calls = []
    monkeypatch.setattr(auth.hashing, "check_dummy", lambda password: calls.append(("argon2", password)) or False)
    monkeypatch.setattr(auth.hashing, "check_dummy_secret", lambda secret: calls.append(("hmac", secret)) or False)
    for username, secret in (("nobody@alpha.test", "secret-1"), ("smtp-000000000000", "secret-2")):
        assert logins.check_login(username=username, password=secret, client_ip="127.0.0.1").principal is None
    # A mailbox's refusal costs an Argon2 hash, a credential's (whose secret is a keyed fast hash) an HMAC.
    assert calls == [("argon2", "secret-1"), ("hmac", "secret-2")]


def test_a_remembered_verification_never_outlives_the_password(cast, monkeypatch):
    hashes = []
    real = auth.hashing.check_hash
    monkeypatch.setattr(auth.hashing, "check_hash", lambda p, h: hashes.append(p) or real(p, h))

    def login(password):
        return logins.check_login(username="info@alpha.test", password=password, client_ip="127.0.0.1").principal

    assert login(PASSWORD) is not None and login(PASSWORD) is not None
    assert hashes == [PASSWORD]  # the second login did not hash again...
    suspend(actor=None, obj=cast.a.mailbox, reason="test")
    assert login(PASSWORD) is None  # ...but a suspended account always does: its refusal takes the same time
    assert hashes == [PASSWORD, PASSWORD]
    restore(actor=None, obj=cast.a.mailbox, reason="test")
    hashes.clear()
    assert login(PASSWORD) is not None and hashes == []
    assert login("wrong password!") is None  # ...a wrong password always does
    mailbox_set_password(actor=None, mailbox=cast.a.mailbox, password="a brand new password")
    assert login(PASSWORD) is None
    assert login("a brand new password") is not None
    assert hashes == ["wrong password!", PASSWORD, "a brand new password"]


def test_revocation_and_suspension_apply_from_the_next_connection(relay, cast):
    new = new_credential(cast.a)
    assert try_login(relay.submission, new.credential.username, new.secret) == OK
    credential_revoke(actor=None, credential=new.credential)
    assert try_login(relay.submission, new.credential.username, new.secret) == INVALID
    assert try_login(relay.submission, "info@alpha.test", PASSWORD) == OK
    suspend(actor=None, obj=cast.a.customer, reason="unpaid")
    assert try_login(relay.submission, "info@alpha.test", PASSWORD) == INVALID
    restore(actor=None, obj=cast.a.customer, reason="paid")
    assert try_login(relay.submission, "info@alpha.test", PASSWORD) == OK


def test_plain_with_another_authorization_identity_is_refused(relay, cast, refusals):
    assert try_login(relay.submission, "info@alpha.test", PASSWORD, authzid="info@bravo.test") == INVALID
    assert try_login(relay.submission, "info@alpha.test", PASSWORD, authzid="info@alpha.test") == OK


def test_second_auth_and_auth_in_a_transaction_are_503(relay, cast):
    with submission_client(relay.submission, auth=("info@alpha.test", PASSWORD)) as client:
        assert auth_plain(client, "info@alpha.test", PASSWORD)[0] == 503
        assert client.docmd("MAIL", "FROM:<info@alpha.test>")[0] == 250
        assert auth_plain(client, "info@alpha.test", PASSWORD) == (503, b"5.5.1 Already authenticated")
    with submission_client(relay.submission) as client:
        assert client.docmd("MAIL", "FROM:<info@alpha.test>")[0] == 530


def test_auth_line_of_12288_octets_is_read(relay, cast, refusals):
    password = "x" * 9100  # base64 of authzid/authcid/password: about 12 200 octets with "AUTH PLAIN "
    blob = base64.b64encode(f"\0info@alpha.test\0{password}".encode()).decode()
    line = f"AUTH PLAIN {blob}"
    assert 12000 < len(line) <= 12288
    with submission_client(relay.submission) as client:
        assert client.docmd(line) == INVALID
        assert auth_plain(client, "info@alpha.test", PASSWORD) == OK


def test_database_down_at_auth_answers_454(relay, cast, monkeypatch):
    def unavailable(requests):
        raise OperationalError("connection refused")

    async def unavailable_on_the_loop(self, name, sql, params):
        raise OperationalError("connection refused")

    monkeypatch.setattr(auth, "lookup_many", unavailable)
    monkeypatch.setattr(loop_reads.PreparedRows, "row", unavailable_on_the_loop)  # PostgreSQL's read on the loop
    with submission_client(relay.submission) as client:
        code, text = auth_plain(client, "info@alpha.test", PASSWORD)
    assert (code, text[:5]) == (454, b"4.7.0")


def test_lockout_answers_421_and_disconnects(relay, cast, settings):
    settings.RELAY_AUTH_MAX_FAILURES = 3
    settings.RELAY_AUTH_DELAY_BASE = 0.001
    settings.RELAY_AUTH_DELAY_MAX = 0.001
    replies = [try_login(relay.submission, "info@alpha.test", "wrong password!") for _ in range(2)]
    assert replies == [INVALID, INVALID]
    with submission_client(relay.submission) as client:
        assert auth_plain(client, "info@alpha.test", "wrong password!")[0] == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    # Locked out now even with the right password.
    with submission_client(relay.submission) as client:
        assert auth_plain(client, "info@alpha.test", PASSWORD)[0] == 421


def test_swaks_authenticates_with_plain_and_login_on_both_ports(relay, cast):
    for port, tls in ((relay.submission, "--tls"), (relay.smtps, "--tlsc")):
        for mechanism in ("PLAIN", "LOGIN"):
            result = swaks(port, "--auth", mechanism, "--auth-user", "info@alpha.test", "--auth-password", PASSWORD,
                           "--from", "info@alpha.test", "--to", "bob@example.org", tls=tls)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "235 2.7.0 Authentication successful" in result.stdout
            assert "250 2.0.0 Ok: queued as" in result.stdout


def test_swaks_wrong_password_gets_535(relay, cast, refusals):
    result = swaks(relay.smtps, "--auth", "PLAIN", "--auth-user", "info@alpha.test", "--auth-password", "nope-nope",
                   "--from", "info@alpha.test", "--to", "bob@example.org", tls="--tlsc")
    assert result.returncode != 0
    assert "535 5.7.8 Authentication credentials invalid" in result.stdout


def test_smtps_client_authenticates_with_a_credential(relay, cast):
    new = new_credential(cast.a)
    with smtps_client(relay.smtps, auth=(new.credential.username, new.secret)) as client:
        assert client.noop()[0] == 250


def test_many_lookups_in_one_go_answer_each_in_its_place(cast):
    from relay.models import AuthLockout

    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    AuthLockout.objects.create(kind="address", value="192.0.2.66", locked_until=timezone.now() + timedelta(minutes=5))
    suspend(actor=cast.support, obj=cast.b.customer, reason="unpaid invoices")
    results = auth.lookup_many([
        ("info@alpha.test", "192.0.2.1"), (new.credential.username, "192.0.2.1"), ("nobody@alpha.test", "192.0.2.1"),
        ("info@alpha.test", "192.0.2.66"), ("", "192.0.2.1"), ("x" * 400, "192.0.2.1"), ("INFO@Alpha.Test", "192.0.2.1"),
        (cast.b.mailbox.address, "192.0.2.1"),
    ])
    assert [r.locked for r in results] == [False, False, False, True, False, False, False, False]
    assert results[0].principal.username == "info@alpha.test" and results[0].principal.kind == "mailbox"
    assert results[1].principal.credential_id == new.credential.pk
    assert results[1].principal.address == ("info", "alpha.test")
    assert results[2].stored_hash == "" and results[2].principal is None
    assert results[4] == results[5] == auth.Candidate(kind="credential")
    assert results[6].principal == results[0].principal  # any case, one account
    assert results[7].stored_hash and results[7].principal is None  # suspended customer: hashed, never usable


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the lookup on the event loop is PostgreSQL's")
def test_the_lookup_on_the_event_loop_answers_as_the_one_on_a_thread(cast):
    from relay.models import AuthFailure, AuthLockout, VerifiedLogin
    from relay.smtpd import threads

    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox, allowed_networks="192.0.2.0/24")
    used = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    SmtpCredential.objects.filter(pk=used.credential.pk).update(last_used_at=timezone.now(), last_used_ip="192.0.2.1")
    revoked = credential_create(actor=None, domain=cast.a.domain)
    credential_revoke(actor=None, credential=revoked.credential)
    VerifiedLogin.objects.create(mailbox=cast.a.mailbox, mac="a remembered login", verified_at=timezone.now())
    AuthLockout.objects.create(kind="address", value="192.0.2.66", locked_until=timezone.now() + timedelta(minutes=5))
    AuthFailure.objects.create(client_ip="192.0.2.7", username="info@alpha.test")
    suspend(actor=cast.support, obj=cast.b.customer, reason="unpaid invoices")
    requests = [
        ("info@alpha.test", "192.0.2.1"), (new.credential.username, "192.0.2.1"), (new.credential.username, "198.51.100.1"),
        (used.credential.username, "192.0.2.1"), (used.credential.username, "192.0.2.2"),
        (revoked.credential.username, "192.0.2.1"), ("nobody@alpha.test", "192.0.2.1"), ("info@alpha.test", "192.0.2.66"),
        ("info@alpha.test", "192.0.2.7"), ("", "192.0.2.1"), ("x" * 400, ""), ("INFO@Alpha.Test", "192.0.2.1"),
        (cast.b.mailbox.address, "192.0.2.1"), ("o'brien@alpha.test", "192.0.2.1"),
    ]
    reader = loop_reads.PreparedRows(generation=threads.close_generation)

    async def on_the_loop():
        try:
            return await asyncio.gather(*(auth.lookup_on_loop(reader, *request) for request in requests))
        finally:
            await reader.close()

    from_the_loop = in_thread(lambda: asyncio.run(on_the_loop()))
    assert from_the_loop == auth.lookup_many(requests)
    assert from_the_loop[0].remembered == "a remembered login" and from_the_loop[3].used_here_lately
    assert from_the_loop[7].locked and from_the_loop[8].address_failures == 1
    assert from_the_loop[1].principal is not None and from_the_loop[2].principal is None
