"""A relay process killed with SIGKILL while clients send: nothing a client saw 250 for is lost, nothing refused
is kept, nothing is half-written, and no quota is used for what was not accepted."""

import smtplib
import threading
import time
from dataclasses import dataclass

import pytest
from django.db.models import Count

from accounts import quotas
from accounts.models import Customer
from accounts.services.credentials import credential_create
from relay.models import QueuedMessage, Recipient
from tests.support.factories import PASSWORD
from tests.support.smtp import message, send, submission_client

pytestmark = pytest.mark.django_db(transaction=True)

LIMITED_TO = 20  # recipients per hour for customer A: ten messages of two, then 451 4.7.1


@dataclass
class Outcome:
    subject: str
    customer: str
    code: int | None  # None: the connection died before an answer; the message may or may not be queued
    text: str = ""


def sender_loop(port: int, login: tuple[str, str], sender: str, customer: str, worker: int, outcomes: list, stop):
    try:
        with submission_client(port, auth=login) as client:
            for n in range(1000):
                if stop.is_set():
                    return
                subject = f"crash {customer} {worker}-{n}"
                outcome = Outcome(subject=subject, customer=customer, code=None)
                outcomes.append(outcome)
                code, text = send(client, sender=sender, recipients=[f"x{n}@example.org", f"y{n}@example.net"],
                                  data=message(sender=sender, subject=subject, body=("x" * 70 + "\r\n") * 30))[-1]
                outcome.code, outcome.text = code, text.decode()
    except (smtplib.SMTPException, OSError):
        return  # the relay died under us


def run_until_killed(relay, senders: dict, outcomes: list) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=sender_loop, args=(relay.submission, *senders[c], c, w, outcomes, stop))
               for c in ("A", "B") for w in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    # Kill once A is being refused for its quota and B has had several messages accepted: mid-stream for both.
    while time.monotonic() < deadline:
        refused_a = any(o.customer == "A" and o.code == 451 for o in outcomes)
        accepted_b = sum(1 for o in outcomes if o.customer == "B" and o.code == 250)
        if refused_a and accepted_b >= 5:
            break
        time.sleep(0.01)
    relay.proc.kill()  # SIGKILL: no cleanup of any kind
    relay.proc.wait(10)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert refused_a and accepted_b >= 5, f"the clients never got going: {outcomes[:6]} {relay.log()[-3000:]}"


def test_sigkill_while_sending_loses_nothing_accepted_and_keeps_nothing_refused(relay_process, cast):
    Customer.objects.filter(pk=cast.a.customer.pk).update(send_per_hour=LIMITED_TO)
    app = credential_create(actor=None, domain=cast.b.domain, mailbox=cast.b.mailbox)
    # A signs in with its mailbox password, B with an app credential of its mailbox.
    senders = {"A": ((cast.a.mailbox.address, PASSWORD), cast.a.mailbox.address),
               "B": ((app.credential.username, app.secret), cast.b.mailbox.address)}
    outcomes: list[Outcome] = []
    for _ in range(2):  # kill, restart, kill again
        run_until_killed(relay_process(), senders, outcomes)

    relay = relay_process()  # restarted on the same database
    stored = {m.subject: m for m in QueuedMessage.objects.annotate(n=Count("recipients"))}
    accepted = [o for o in outcomes if o.code == 250]
    refused = [o for o in outcomes if o.code is not None and o.code != 250]
    assert accepted and refused
    assert any(o.code is None for o in outcomes)  # the kills cut sessions in the middle of a message
    for o in accepted:
        assert o.subject in stored, f"{o.subject} was answered 250 but is not in the queue"
        assert o.text.endswith(f"queued as {stored[o.subject].queue_id}")
    for o in refused:
        assert o.code == 451 and o.text.startswith("4.7.1 Sending limit reached"), o
        assert o.subject not in stored, f"{o.subject} was refused but is in the queue"
    # Nothing half-written: every stored message has both its recipients, and the queue holds nothing unknown.
    assert {m.n for m in stored.values()} == {2}
    assert set(stored) <= {o.subject for o in outcomes}
    # Quota was used exactly for what is stored, at every level of each sender.
    for tenant in (cast.a, cast.b):
        in_queue = Recipient.objects.filter(message__customer=tenant.customer).count()
        assert quotas.usage(scope="customer", scope_id=tenant.customer.pk)["hour"] == in_queue
        assert quotas.usage(scope="domain", scope_id=tenant.domain.pk)["hour"] == in_queue
    assert quotas.usage(scope="customer", scope_id=cast.a.customer.pk)["hour"] == LIMITED_TO

    # And the restarted relay takes mail again.
    login, sender = senders["B"]
    with submission_client(relay.submission, auth=login) as client:
        reply = send(client, sender=sender, recipients=["after@example.org"],
                     data=message(sender=sender, subject="after the crash"))[-1]
    assert reply[0] == 250, reply
