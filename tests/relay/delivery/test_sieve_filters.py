"""A mailbox's filters from the panel, run by a real Dovecot (the shipped configuration with its Sieve plugin,
reading the script from PostgreSQL through dict-sql) and read back over IMAP."""

import pytest

from accounts.services.filters import sieve_script_save
from relay.delivery import attempts
from relay.models import QueuedMessage
from tests.relay.delivery.test_lmtp import dovecot, fetch_all, mx, needs_postgresql, receive  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@needs_postgresql
def test_a_rule_made_with_the_form_moves_the_message_into_its_folder(dovecot, mx, cast):  # noqa: F811
    sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="rules", rules=[
        {"field": "subject", "contains": "invoice", "action": "fileinto", "target": "Billing"}])
    filed = receive(mx, data=b"From: someone@sender.example\r\nSubject: Your Invoice 42\r\n\r\nhi\r\n")
    kept = receive(mx, data=b"From: someone@sender.example\r\nSubject: lunch?\r\n\r\nhi\r\n")
    for message in (filed, kept):
        assert attempts.deliver(message.pk) == QueuedMessage.State.DELIVERED

    assert [m["Subject"] for m in fetch_all(dovecot, "info@alpha.test", "Billing")] == ["Your Invoice 42"]
    assert [m["Subject"] for m in fetch_all(dovecot, "info@alpha.test")] == ["lunch?"]

    # Changed in the panel: Dovecot compiles the new version at the next delivery (no file, no reload).
    sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="raw",
                      script='require ["fileinto", "mailbox"];\nfileinto :create "Everything";\n')
    later = receive(mx, data=b"From: someone@sender.example\r\nSubject: Invoice 43\r\n\r\nhi\r\n")
    assert attempts.deliver(later.pk) == QueuedMessage.State.DELIVERED
    assert [m["Subject"] for m in fetch_all(dovecot, "info@alpha.test", "Everything")] == ["Invoice 43"]
    assert len(fetch_all(dovecot, "info@alpha.test", "Billing")) == 1


@needs_postgresql
def test_spam_still_goes_to_junk_before_the_mailboxs_own_rules(dovecot, mx_factory, cast, dns_server):  # noqa: F811
    sieve_script_save(actor=None, mailbox=cast.a.mailbox, mode="raw",
                      script='require ["fileinto", "mailbox"];\nfileinto :create "Everything";\n')
    dns_server(txt=["quarantined.example,v=spf1 -all", "_dmarc.quarantined.example,v=DMARC1; p=quarantine"])
    message = receive(mx_factory(), sender="someone@quarantined.example",
                      data=b"From: someone@quarantined.example\r\nSubject: spoofed\r\n\r\nhi\r\n")
    assert attempts.deliver(message.pk) == QueuedMessage.State.DELIVERED
    assert [m["Subject"] for m in fetch_all(dovecot, "info@alpha.test", "Junk")] == ["spoofed"]
    assert fetch_all(dovecot, "info@alpha.test", "Everything") == []
