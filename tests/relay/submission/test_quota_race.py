"""Racing senders in separate OS processes never overshoot a sending limit.

PostgreSQL: three processes (row locks in a fixed order); SQLite: two (its IMMEDIATE transactions serialise
writers, so more processes add only waiting).
"""

import threading

import pytest
from django.db import connection, transaction

from accounts import quotas
from accounts.models import Customer, Domain, SendUsage
from accounts.services.credentials import credential_create
from relay.models import QueuedMessage, Recipient
from tests.support import racing
from tests.support.factories import PASSWORD, make_tenant
from tests.support.quotas import check_and_count
from tests.support.smtp import message, send, submission_client


def process_count() -> int:
    return 3 if connection.vendor == "postgresql" else 2


def race(senders: list[tuple[str, int]], attempts: int, hold: float = 0.02) -> list[dict]:
    """One racer process per (kind, pk), released together; what each reports."""
    return racing.race([["tests.support.quota_racer", kind, str(pk), str(attempts), str(hold)]
                        for kind, pk in senders])


@pytest.mark.django_db(transaction=True)
def test_racing_processes_get_exactly_the_last_ten_units():
    tenant = make_tenant("Racer", "racer.test")
    by_mailbox = credential_create(actor=None, domain=tenant.domain, mailbox=tenant.mailbox).credential
    domain_wide = credential_create(actor=None, domain=tenant.domain).credential
    Domain.objects.filter(pk=tenant.domain.pk).update(send_per_hour=30)
    with transaction.atomic():
        check_and_count(mailbox=tenant.mailbox, recipients=20)

    # Three different senders share the domain's limit: only the domain row serialises them.
    senders = [("mailbox", tenant.mailbox.pk), ("credential", by_mailbox.pk), ("credential", domain_wide.pk)]
    results = race(senders[:process_count()], attempts=10)

    assert sum(r["accepted"] for r in results) == 10
    assert sum(r["refused"] for r in results) == 10 * process_count() - 10
    for scope, pk in [("domain", tenant.domain.pk), ("customer", tenant.customer.pk)]:
        assert quotas.usage(scope=scope, scope_id=pk) == {"hour": 30, "day": 30}
    per_sender = sum(SendUsage.objects.filter(scope="credential").values_list("count", flat=True))
    assert per_sender == sum(r["accepted"] for r in results[1:])


def test_twenty_sessions_on_several_relay_processes_get_exactly_the_last_ten_units(relay_process, cast):
    """The issue's proof: 20 concurrent SMTP sessions spread over the relay processes, 10 units left."""
    relays = [relay_process() for _ in range(process_count())]
    credential = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    logins = [(cast.a.mailbox.address, PASSWORD), (credential.credential.username, credential.secret)]
    Customer.objects.filter(pk=cast.a.customer.pk).update(send_per_hour=30)
    with transaction.atomic():
        check_and_count(mailbox=cast.a.mailbox, recipients=20)
    sender = cast.a.mailbox.address
    barrier = threading.Barrier(20, timeout=60)
    replies: dict[int, tuple[int, str]] = {}

    def session(i: int) -> None:
        with submission_client(relays[i % len(relays)].submission, auth=logins[i % 2]) as client:
            barrier.wait()  # every session authenticated: all send at once
            code, text = send(client, sender=sender, recipients=[f"r{i}@example.org"],
                              data=message(sender=sender, subject=f"race {i}"))[-1]
            replies[i] = (code, text.decode())

    threads = [threading.Thread(target=session, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(replies) == 20, replies

    accepted = {i for i, (code, _) in replies.items() if code == 250}
    refused = {i: text for i, (code, text) in replies.items() if code != 250}
    assert len(accepted) == 10
    assert all(replies[i][0] == 451 and text.startswith("4.7.1 Sending limit reached: 30 recipients per hour "
                                                        "for customer Alpha") for i, text in refused.items()), refused
    assert sorted(QueuedMessage.objects.filter(customer=cast.a.customer).values_list("subject", flat=True)) == sorted(
        f"race {i}" for i in accepted)
    assert Recipient.objects.filter(message__customer=cast.a.customer).count() == 10
    for scope, pk in [("mailbox", cast.a.mailbox.pk), ("domain", cast.a.domain.pk),
                      ("customer", cast.a.customer.pk), ("reseller", cast.reseller_a.pk)]:
        assert quotas.usage(scope=scope, scope_id=pk)["hour"] == 30, scope
    by_credential = sum(1 for i in accepted if i % 2)
    assert quotas.usage(scope="credential", scope_id=credential.credential.pk)["hour"] == by_credential
