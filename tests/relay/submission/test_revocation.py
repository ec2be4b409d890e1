"""A login revoked while its session is open: the next MAIL of that session is refused, nothing more is queued."""

import pytest
from django.db import connection

from accounts.models import Reseller, Status
from accounts.services.credentials import credential_create, credential_revoke
from accounts.services.mailboxes import mailbox_set_password, mailbox_update
from accounts.services.suspension import suspend

from relay.models import QueuedMessage
from relay.submission import auth
from tests.support.factories import PASSWORD
from tests.support.smtp import message, send, submission_client

pytestmark = pytest.mark.django_db(transaction=True)

REVOKED = (530, b"5.7.0 Authentication required: this login is no longer valid")
SENDER = "info@alpha.test"


def one_message(client):
    return send(client, sender=SENDER, recipients=["bob@example.org"], data=message(sender=SENDER))


REVOCATIONS = {
    "credential revoked": lambda cast, credential: credential_revoke(actor=None, credential=credential),
    "credential suspended": lambda cast, credential: suspend(actor=None, obj=credential, reason="leaked"),
    "mailbox suspended": lambda cast, credential: suspend(actor=None, obj=cast.a.mailbox, reason="spam"),
    "domain suspended": lambda cast, credential: suspend(actor=None, obj=cast.a.domain, reason="abuse"),
    "customer suspended": lambda cast, credential: suspend(actor=None, obj=cast.a.customer, reason="unpaid"),
    "reseller suspended": lambda cast, credential: suspend(actor=None, obj=cast.reseller_a,
                                                            reason="contract ended"),
}


@pytest.mark.parametrize("revoke", REVOCATIONS.values(), ids=REVOCATIONS.keys())
def test_a_login_revoked_mid_session_stops_at_the_next_mail(relay, cast, revoke):
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    with submission_client(relay.submission, auth=(new.credential.username, new.secret)) as client:
        assert one_message(client)[-1][0] == 250
        revoke(cast, new.credential)
        assert client.docmd("MAIL", f"FROM:<{SENDER}>") == REVOKED
        # The session has lost its authentication: nothing goes through it any more.
        assert client.docmd("RCPT", "TO:<bob@example.org>")[0] in (503, 530)
        assert one_message(client)[0][0] == 530
    assert QueuedMessage.objects.count() == 1


def test_a_mailbox_login_stops_when_its_password_changes_or_smtp_is_switched_off(relay, cast):
    with submission_client(relay.submission, auth=(SENDER, PASSWORD)) as client:
        assert one_message(client)[-1][0] == 250
        mailbox_set_password(actor=None, mailbox=cast.a.mailbox, password="a new password for this box")
        assert one_message(client)[0] == REVOKED
    with submission_client(relay.submission, auth=(SENDER, "a new password for this box")) as client:
        assert one_message(client)[-1][0] == 250
        mailbox_update(actor=None, mailbox=cast.a.mailbox, smtp_enabled=False)
        assert one_message(client)[0] == REVOKED
    assert QueuedMessage.objects.count() == 2


def test_revoking_another_login_of_the_customer_leaves_this_session_sending(relay, cast):
    other = credential_create(actor=None, domain=cast.a.domain).credential
    with submission_client(relay.submission, auth=(SENDER, PASSWORD)) as client:
        assert one_message(client)[-1][0] == 250
        credential_revoke(actor=None, credential=other)
        assert one_message(client)[-1][0] == 250
        assert one_message(client)[-1][0] == 250
    assert QueuedMessage.objects.count() == 3


def test_a_session_that_lost_its_login_may_authenticate_again(relay, cast):
    with submission_client(relay.submission, auth=(SENDER, PASSWORD)) as client:
        mailbox_set_password(actor=None, mailbox=cast.a.mailbox, password="a new password for this box")
        assert one_message(client)[0] == REVOKED
        from tests.support.smtp import auth_plain
        assert auth_plain(client, SENDER, "a new password for this box")[0] == 235
        assert one_message(client)[-1][0] == 250
    assert Reseller.objects.get(pk=cast.reseller_a.pk).status == Status.ACTIVE


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the read on the event loop is PostgreSQL's")
def test_the_check_at_mail_is_read_on_the_event_loop_not_on_a_database_thread(relay, cast, monkeypatch):
    def on_a_thread(customer_ids):
        raise AssertionError("the login generations were read on a database thread")

    monkeypatch.setattr(auth, "generations_many", on_a_thread)
    new = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    with submission_client(relay.submission, auth=(new.credential.username, new.secret)) as client:
        assert one_message(client)[-1][0] == 250
        credential_revoke(actor=None, credential=new.credential)
        assert client.docmd("MAIL", f"FROM:<{SENDER}>") == REVOKED
