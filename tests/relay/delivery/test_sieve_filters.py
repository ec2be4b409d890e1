"""A mailbox's filters from the panel, run by a real Dovecot (the shipped configuration with its Sieve plugin,
reading the script from PostgreSQL through dict-sql) and read back over IMAP."""

import pytest

from accounts.models import SendUsage
from accounts.services.filters import sieve_script_save
from accounts.services.mailboxes import mailbox_update
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

    # Every rule removed: mail stays in the inbox.
    sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="rules", rules=[])
    last = receive(mx, data=b"From: someone@sender.example\r\nSubject: Invoice 44\r\n\r\nhi\r\n")
    assert attempts.deliver(last.pk) == QueuedMessage.State.DELIVERED
    assert [m["Subject"] for m in fetch_all(dovecot, "info@alpha.test")] == ["lunch?", "Invoice 44"]


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


@needs_postgresql
def test_a_forward_rule_goes_out_through_the_queue_counted_against_the_mailbox(dovecot, mx, cast):  # noqa: F811
    sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="rules", rules=[
        {"field": "subject", "contains": "for the boss", "action": "redirect", "target": "boss@example.org"}])
    message = receive(mx, data=b"From: someone@sender.example\r\nSubject: for the boss\r\n\r\nhi\r\n")
    assert attempts.deliver(message.pk) == QueuedMessage.State.DELIVERED, dovecot.log.read_text()[-3000:]

    copy = QueuedMessage.objects.get(direction=QueuedMessage.Direction.OUTBOUND)
    assert (copy.mailbox_id, copy.mail_from, copy.subject) == (cast.a.mailbox.pk, "info@alpha.test", "for the boss")
    assert list(copy.recipients.values_list("address", flat=True)) == ["boss@example.org"]
    assert SendUsage.objects.filter(scope=SendUsage.Scope.MAILBOX, scope_id=cast.a.mailbox.pk).exists()
    assert fetch_all(dovecot, "info@alpha.test") == []  # redirected, not kept


@needs_postgresql
def test_a_forward_rule_over_the_sending_limit_waits(dovecot, mx, cast):  # noqa: F811
    sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="rules", rules=[
        {"field": "subject", "contains": "for the boss", "action": "redirect", "target": "boss@example.org"}])
    mailbox_update(actor=None, mailbox=cast.a.mailbox, send_per_hour=0)
    message = receive(mx, data=b"From: someone@sender.example\r\nSubject: for the boss\r\n\r\nhi\r\n")
    assert attempts.deliver(message.pk) == QueuedMessage.State.DEFERRED
    assert message.recipients.get().last_code // 100 == 4
    assert not QueuedMessage.objects.filter(direction=QueuedMessage.Direction.OUTBOUND).exists()
