from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services.credentials import credential_create
from relay.models import QueuedMessage
from relay.panel.selectors import MessageFilter, chart_messages, message_search, messages_visible_to, sending_per_day
from tests.support.logdata import make_message
from tests.support.permissions import mailbox_user

pytestmark = pytest.mark.django_db


def ids(qs):
    return set(qs.values_list("queue_id", flat=True))


def test_messages_visible_to_each_role(cast):
    a_mailbox = make_message(cast.a)
    a_other = make_message(cast.a, via_mailbox=False)
    b = make_message(cast.b)
    direct = make_message(cast.direct)
    system = QueuedMessage.objects.create(mail_from="", is_bounce=True)  # a bounce belongs to no customer
    assert ids(messages_visible_to(cast.support)) == {m.queue_id for m in (a_mailbox, a_other, b, direct, system)}
    assert ids(messages_visible_to(cast.reseller_a_admin)) == {a_mailbox.queue_id, a_other.queue_id}
    assert ids(messages_visible_to(cast.reseller_b_admin)) == {b.queue_id}
    assert ids(messages_visible_to(cast.a.user)) == {a_mailbox.queue_id, a_other.queue_id}
    assert ids(messages_visible_to(cast.direct.user)) == {direct.queue_id}
    assert ids(messages_visible_to(mailbox_user(cast.a.mailbox))) == {a_mailbox.queue_id}


def test_mailbox_owner_sees_mail_sent_with_a_credential_scoped_to_its_mailbox(cast):

    credential = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox).credential
    message = make_message(cast.a, via_mailbox=False, credential=credential)
    assert ids(messages_visible_to(mailbox_user(cast.a.mailbox))) == {message.queue_id}


def test_search_combines_filters(cast):
    today = timezone.localdate()
    hit = make_message(cast.a, to=("bob@example.org",), subject="Invoice", state="delivered")
    make_message(cast.a, to=("bob@example.org",), subject="Invoice", state="bounced")
    make_message(cast.a, to=("ann@example.org",), subject="Invoice", state="delivered")
    found = message_search(QueuedMessage.objects.all(), MessageFilter(
        recipient="bob", subject="inv", state="delivered", date_from=today, date_to=today))
    assert [m.queue_id for m in found] == [hit.queue_id]
    assert [r.address for r in found[0].preview_recipients] == ["bob@example.org"]


def test_a_page_names_three_recipients_a_message_and_counts_the_rest_in_two_queries(cast):
    from relay.panel.selectors import with_recipient_counts

    big = make_message(cast.a, to=tuple(f"r{i:02}@example.org" for i in range(40)))
    small = make_message(cast.a, to=("one@example.org",))
    with CaptureQueriesContext(connection) as ctx:
        rows = with_recipient_counts(list(message_search(QueuedMessage.objects.all(), MessageFilter())))
    assert len(ctx.captured_queries) == 3  # the rows, their first recipients, the counts
    assert "ROW_NUMBER" in ctx.captured_queries[1]["sql"].upper()  # at most three a message leave the database
    by_id = {m.pk: m for m in rows}
    assert [r.address for r in by_id[big.pk].preview_recipients] == ["r00@example.org", "r01@example.org",
                                                                     "r02@example.org"]
    assert (by_id[big.pk].recipient_count, by_id[big.pk].more_recipients) == (40, 37)
    assert (by_id[small.pk].recipient_count, by_id[small.pk].more_recipients) == (1, 0)


def test_sending_per_day_counts_recipients_by_state_in_one_query(cast):
    now = timezone.now()
    make_message(cast.a, to=("d1@x.org", "d2@x.org"), recipient_state="delivered", state="delivered")
    make_message(cast.a, to=("q@x.org",), recipient_state="deferred", state="deferred")
    make_message(cast.a, to=("b@x.org",), recipient_state="bounced", state="bounced")
    make_message(cast.a, to=("y@x.org",), created_at=now - timedelta(days=1))
    make_message(cast.a, to=("old@x.org",), created_at=now - timedelta(days=20))
    make_message(cast.b, to=("other@x.org",), recipient_state="delivered")
    bounce = QueuedMessage.objects.create(mail_from="", is_bounce=True, customer=cast.a.customer)
    bounce.recipients.create(address=cast.a.mailbox.address)

    with CaptureQueriesContext(connection) as ctx:
        days = sending_per_day(messages=chart_messages(user=cast.a.user, customer=cast.a.customer))
    assert len(ctx.captured_queries) == 1
    assert len(days) == 14 and days[-1]["day"] == timezone.localdate()
    assert {k: days[-1][k] for k in ("sent", "delivered", "deferred", "bounced")} == \
        {"sent": 4, "delivered": 2, "deferred": 1, "bounced": 1}
    assert days[-2]["sent"] == 1 and days[-2]["delivered"] == 0
    assert sum(d["sent"] for d in days) == 5

    everything = sending_per_day(messages=chart_messages(user=cast.support))
    assert everything[-1]["sent"] == 5 and everything[-1]["delivered"] == 3


def test_chart_scope_never_widens_what_the_user_may_see(cast):
    make_message(cast.b, to=("other@x.org",))
    days = sending_per_day(messages=chart_messages(user=cast.a.user, customer=cast.b.customer))
    assert sum(d["sent"] for d in days) == 0
    days = sending_per_day(messages=chart_messages(user=cast.reseller_b_admin, reseller=cast.reseller_b))
    assert sum(d["sent"] for d in days) == 1


def test_sending_chart_counts_outbound_mail_only(cast):
    make_message(cast.a, to=("d@x.org",), recipient_state="delivered", state="delivered")
    make_message(cast.a, to=(cast.a.mailbox.address,), recipient_state="delivered", state="delivered",
                 direction=QueuedMessage.Direction.INBOUND, mail_from="someone@example.org")
    days = sending_per_day(messages=chart_messages(user=cast.a.user, customer=cast.a.customer))
    assert (days[-1]["sent"], days[-1]["delivered"]) == (1, 1)
