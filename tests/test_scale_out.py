"""Scale-out on one PostgreSQL and one Redis: two relay processes, two Celery worker processes, 500 messages from
20 concurrent clients across both relays to a local MX. Every accepted message is delivered exactly once to each
recipient, the sending quota is exact across both relays, and nothing is left in the queue."""

import threading
from collections import Counter

import pytest
from django.conf import settings
from django.db.models import Sum

from accounts.models import Customer, SendUsage
from relay.models import QueuedMessage, Recipient
from tests.support.delivery import mx, routes  # noqa: F401
from tests.support.smtp import message as make_message
from tests.support.smtp import send, submission_client
from tests.support.workers import broker_env, celery_processes, redis_url, require_redis, wait_until  # noqa: F401

CLIENTS, PER_CLIENT = 20, 25
# Two recipients a message in two domains (two SMTP transactions); the customer's hourly limit leaves room for
# only 900 of the 1000 recipients, so the two relays must share one exact count.
LIMIT = 900


@pytest.mark.skipif("postgresql" not in settings.DATABASES["default"]["ENGINE"],
                    reason="scale-out runs on PostgreSQL (DATABASE_URL=postgres://…): SQLite serialises every writer")
@pytest.mark.django_db(transaction=True)
def test_two_relays_two_workers_500_messages(cast, login, routes, mx, relay_process, celery_processes, tmp_path):
    url = redis_url()
    require_redis(url)
    Customer.objects.filter(pk=cast.a.customer.pk).update(send_per_hour=LIMIT, send_per_day=None)
    env = broker_env(url, tmp_path)
    workers = [celery_processes("worker", env, "-P", "solo") for _ in range(2)]
    relays = [relay_process(env=env), relay_process(env=env)]
    sender = cast.a.mailbox.address
    accepted, refused, errors = [], [], []
    lock = threading.Lock()

    def client(n: int) -> None:
        try:
            with submission_client(relays[n % 2].submission, auth=login) as smtp:
                for m in range(PER_CLIENT):
                    rcpts = [f"c{n}m{m}@b.test", f"c{n}m{m}@amx.test"]
                    replies = send(smtp, sender=sender, recipients=rcpts,
                                   data=make_message(sender=sender, to=rcpts[0], subject=f"scale {n}-{m}"))
                    with lock:
                        (accepted if replies[-1][0] == 250 else refused).append((rcpts, replies[-1]))
                    if replies[-1][0] != 250:
                        smtp.rset()
        except Exception as error:  # reported below with the others
            with lock:
                errors.append(f"client {n}: {error!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(accepted) + len(refused) == CLIENTS * PER_CLIENT
    assert len(accepted) * 2 == LIMIT, f"{len(accepted)} accepted; refusals: {Counter(r[1] for r in refused)}"
    assert all(code == 451 and b"4.7.1" in text for _, (code, text) in refused), "refused for the quota only"

    def queue_empty() -> bool:
        return not QueuedMessage.objects.filter(state__in=[QueuedMessage.State.QUEUED,
                                                           QueuedMessage.State.DEFERRED]).exists()

    wait_until(queue_empty, timeout=90, what="queue drained", processes=workers)
    expected = sorted(r for rcpts, _ in accepted for r in rcpts)
    got = Counter(r for m in mx.messages for r in m.rcpt_tos)
    assert sorted(got) == expected, "every accepted recipient reached the MX"
    assert max(got.values()) == 1, f"sent twice: {[r for r, n in got.items() if n > 1][:5]}"
    assert QueuedMessage.objects.count() == len(accepted)
    assert set(QueuedMessage.objects.values_list("state", flat=True)) == {QueuedMessage.State.DELIVERED}
    assert Recipient.objects.filter(state=Recipient.State.DELIVERED).count() == LIMIT
    usage = SendUsage.objects.filter(scope=SendUsage.Scope.CUSTOMER, scope_id=cast.a.customer.pk)
    assert usage.aggregate(total=Sum("count"))["total"] == LIMIT
    assert {m.session for m in mx.messages} and len({m.session for m in mx.messages}) < len(mx.messages), \
        "the workers reused their SMTP sessions"
