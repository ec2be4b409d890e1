from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from relay.models import QueuedMessage, Recipient
from tests.support.logdata import add_attempt, make_message
from tests.support.permissions import assert_matrix, mailbox_user
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db

SEE = {"owner": 200, "support": 200, "reseller": 200, "other_reseller": 404, "other_customer": 404,
       "direct": 404, "mailbox_owner": 200}


def detail(message):
    return reverse("relay:message_detail", args=[message.pk])


def listed(client, user, **params):
    client.force_login(user)
    response = client.get(reverse("relay:message_list"), params)
    assert response.status_code == 200
    return {m.queue_id for m in response.context["page"]}


def test_message_page_permission_matrix(client, cast):
    assert_matrix(client, cast, detail(make_message(cast.a)), SEE)


def test_mailbox_owner_does_not_see_mail_sent_with_another_credential_of_its_domain(client, cast):
    message = make_message(cast.a, via_mailbox=False)
    assert_matrix(client, cast, detail(message), {**SEE, "mailbox_owner": 404})


def test_message_log_lists_only_what_each_user_may_see(client, cast):
    mine = make_message(cast.a)
    other_cred = make_message(cast.a, via_mailbox=False)
    theirs = make_message(cast.b)
    direct = make_message(cast.direct)
    assert listed(client, cast.a.user) == {mine.queue_id, other_cred.queue_id}
    assert listed(client, cast.reseller_a_admin) == {mine.queue_id, other_cred.queue_id}
    assert listed(client, cast.reseller_b_admin) == {theirs.queue_id}
    assert listed(client, mailbox_user(cast.a.mailbox)) == {mine.queue_id}
    assert listed(client, cast.support) == {mine.queue_id, other_cred.queue_id, theirs.queue_id, direct.queue_id}


def test_message_log_sends_anonymous_to_login(client, cast):
    response = client.get(reverse("relay:message_list"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_search_by_recipient_sender_subject_state_and_dates(client, cast):
    now = timezone.now()
    invoice = make_message(cast.a, to=("bob@example.org", "carol@example.net"), subject="Invoice 42",
                           state=QueuedMessage.State.DELIVERED, created_at=now - timedelta(days=3))
    news = make_message(cast.a, to=("dave@example.org",), subject="Newsletter", mail_from="news@alpha.test",
                        state=QueuedMessage.State.DEFERRED)
    user = cast.a.user
    assert listed(client, user, recipient="carol@") == {invoice.queue_id}
    assert listed(client, user, recipient="EXAMPLE.ORG") == {invoice.queue_id, news.queue_id}
    assert listed(client, user, sender="news@") == {news.queue_id}
    assert listed(client, user, subject="invoice") == {invoice.queue_id}
    assert listed(client, user, state="deferred") == {news.queue_id}
    three_days_ago = (now - timedelta(days=3)).date().isoformat()
    assert listed(client, user, date_from=three_days_ago, date_to=three_days_ago) == {invoice.queue_id}
    assert listed(client, user, date_from=(now - timedelta(days=1)).date().isoformat()) == {news.queue_id}
    # Support searches every customer's messages.
    make_message(cast.b, to=("carol@example.net",))
    assert len(listed(client, cast.support, recipient="carol@")) == 2


def test_staff_search_by_customer_name(client, cast):
    alpha, bravo = make_message(cast.a), make_message(cast.b)
    assert listed(client, cast.support, customer="brav") == {bravo.queue_id}
    assert listed(client, cast.reseller_a_admin, customer="alp") == {alpha.queue_id}
    client.force_login(cast.a.user)
    assert "customer" not in client.get(reverse("relay:message_list")).context["form"].fields


def test_a_message_with_two_matching_recipients_is_one_row(client, cast):
    message = make_message(cast.a, to=("x1@example.org", "x2@example.org"))
    client.force_login(cast.a.user)
    response = client.get(reverse("relay:message_list"), {"recipient": "example.org"})
    assert [m.queue_id for m in response.context["page"]] == [message.queue_id]


def test_a_row_shows_three_recipients_and_how_many_more(client, cast):
    make_message(cast.a, to=tuple(f"r{i}@example.org" for i in range(5)))
    make_message(cast.a, to=("solo@example.org",))
    client.force_login(cast.a.user)
    body = client.get(reverse("relay:message_list")).content.decode()
    assert "r0@example.org, r1@example.org, r2@example.org <span class=\"muted\">+2 more</span>" in body
    assert "r3@example.org" not in body and "solo@example.org</td>" in body


@pytest.mark.parametrize("params", [{}, {"recipient": "example.org", "sender": "a", "customer": "a"}])
def test_the_page_count_never_joins_messages_to_their_recipients(client, cast, params):
    make_message(cast.a, to=("x1@example.org", "x2@example.org"))
    sign_in_verified(client, cast.support)
    with CaptureQueriesContext(connection) as ctx:
        # A page past the first is counted before it is fetched (the first is fetched first: a short list is
        # counted by that fetch).
        response = client.get(reverse("relay:message_list"), {**params, "page": "2"})
    assert response.context["page"].paginator.count == 1
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(")]
    assert len(counts) == 1
    assert "GROUP BY" not in counts[0] and "relay_recipient\" ON" not in counts[0]


def test_the_log_counts_up_to_a_cap_and_says_more_than_past_it(client, cast, monkeypatch):
    from accounts.views import common as views_common

    for i in range(4):
        make_message(cast.a, subject=f"Note {i}")
    monkeypatch.setattr(views_common, "COUNT_CAP", 3)
    client.force_login(cast.a.user)
    body = client.get(reverse("relay:message_list")).content.decode()
    assert "More than 3 messages: narrow the search to see them all" in body
    narrowed = client.get(reverse("relay:message_list"), {"subject": "Note 1"}).content.decode()
    assert "1 message</p>" in narrowed


def test_bad_search_input_gets_a_form_error(client, cast):
    make_message(cast.a)
    client.force_login(cast.a.user)
    response = client.get(reverse("relay:message_list"), {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()
    assert list(response.context["page"]) == []
    response = client.get(reverse("relay:message_list"), {"state": "lost", "date_from": "yesterday"})
    assert set(response.context["form"].errors) == {"state", "date_from"}


def test_pagination(client, cast):
    base = timezone.now()
    ids = [make_message(cast.a, created_at=base - timedelta(minutes=i)).queue_id for i in range(30)]
    client.force_login(cast.a.user)
    first = client.get(reverse("relay:message_list"))
    assert [m.queue_id for m in first.context["page"]] == ids[:25]
    assert 'rel="next"' in first.content.decode()
    second = client.get(reverse("relay:message_list"), {"page": 2})
    assert [m.queue_id for m in second.context["page"]] == ids[25:]
    bigger = client.get(reverse("relay:message_list"), {"per_page": 50})
    assert len(bigger.context["page"]) == 30


def _list_queries(client, per_page: int) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("relay:message_list"), {"per_page": per_page})
    assert response.status_code == 200
    assert len(response.context["page"]) == per_page
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["customer", "support"])
def test_query_count_does_not_grow_with_page_size(client, cast, who):
    for i in range(50):
        make_message(cast.a, to=(f"r{i}a@example.org", f"r{i}b@example.org", f"r{i}c@example.org", "d@example.org"))
    client.force_login(cast.support if who == "support" else cast.a.user)
    assert _list_queries(client, 25) == _list_queries(client, 50)


def test_message_page_shows_recipients_attempts_next_attempt_and_bounce(client, cast):
    message = make_message(cast.a, to=("ok@example.org", "later@example.net", "gone@example.org"),
                           state=QueuedMessage.State.DEFERRED, dkim_signed=True, tls_version="TLSv1.3",
                           next_attempt_at=timezone.now() + timedelta(minutes=10), attempts=2)
    ok, later, gone = message.recipients.all()
    Recipient.objects.filter(pk=ok.pk).update(state="delivered", last_code=250, last_status="2.0.0",
                                              last_reply="Ok: queued as 7F3A", remote_host="mx1.example.org")
    Recipient.objects.filter(pk=later.pk).update(state="deferred", last_code=451, last_status="4.7.1",
                                                 last_reply="Greylisted, try again", remote_host="mx.example.net")
    Recipient.objects.filter(pk=gone.pk).update(state="bounced", last_code=550, last_status="5.1.1",
                                                last_reply="No such user here")
    add_attempt(message, later, code=421, reply="Service not available", outcome="deferred", host="mx.example.net",
                ip="198.51.100.7")
    add_attempt(message, gone, code=550, reply="No such user here", outcome="bounced")
    bounce = QueuedMessage.objects.create(mail_from="", is_bounce=True, bounce_of=message, subject="Undelivered")
    Recipient.objects.create(message=bounce, address=message.mail_from)

    client.force_login(cast.a.user)
    page = client.get(detail(message)).content.decode()
    for text in ("Ok: queued as 7F3A", "Greylisted, try again", "4.7.1", "No such user here", "5.1.1",
                 "mx.example.net", "[198.51.100.7]", "Service not available", "TLSv1.3", "Next attempt",
                 bounce.queue_id, "A delivery status notification"):
        assert text in page, text
    assert '<span class="badge active">yes</span>' in page  # DKIM signed


def test_purged_message_keeps_its_log_lines(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DELIVERED, purged_at=timezone.now())
    QueuedMessage.objects.filter(pk=message.pk).update(content=None)
    add_attempt(message, message.recipients.get(), code=250, reply="2.0.0 Ok delivered", outcome="delivered")
    client.force_login(cast.a.user)
    page = client.get(detail(message)).content.decode()
    assert "content purged" in page and "2.0.0 Ok delivered" in page
    assert "(content purged)" in client.get(reverse("relay:message_list")).content.decode()


def test_retry_and_cancel_buttons_only_for_support(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DEFERRED)
    for user, shown in ((cast.support, True), (cast.a.user, False), (cast.reseller_a_admin, False)):
        client.force_login(user)
        page = client.get(detail(message)).content.decode()
        assert ("Retry now" in page) is shown
        assert (reverse("relay:message_cancel", args=[message.pk]) in page) is shown


def test_no_buttons_once_a_message_is_done(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DELIVERED)
    sign_in_verified(client, cast.support)
    assert "Retry now" not in client.get(detail(message)).content.decode()


def test_only_support_may_retry_or_cancel(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DEFERRED)
    retry = reverse("relay:message_retry", args=[message.pk])
    cancel = reverse("relay:message_cancel", args=[message.pk])
    # The role gate answers before the message is looked up: 403 whoever's message it is.
    deny = {"owner": 403, "reseller": 403, "other_reseller": 403, "other_customer": 403, "direct": 403,
            "mailbox_owner": 403}
    assert_matrix(client, cast, retry, deny, method="post")
    assert_matrix(client, cast, cancel, deny, method="post", data={"action": "discard", "reason": "spam"})
    # assert_matrix signs in without the two-factor code: support staff are sent to the code page first.
    assert_matrix(client, cast, cancel, {**deny, "support": 302})
    sign_in_verified(client, cast.support)
    assert client.get(cancel).status_code == 200
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.DEFERRED


def test_cancel_needs_a_reason_and_a_choice(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DEFERRED)
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:message_cancel", args=[message.pk]), {"action": "burn", "reason": "  "})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"action", "reason"}
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.DEFERRED


@pytest.mark.parametrize("who", ["customer", "mailbox"])
def test_every_page_links_to_the_message_log(client, cast, who):
    client.force_login(cast.a.user if who == "customer" else mailbox_user(cast.a.mailbox))
    page = client.get(reverse("relay:message_list")).content.decode()
    assert f'href="{reverse("relay:message_list")}">Sent mail' in page
    assert (reverse("relay:lockout_list") in page) is (who == "customer")


def test_support_retries_a_deferred_message_now(client, cast):
    later = timezone.now() + timedelta(hours=1)
    message = make_message(cast.a, state=QueuedMessage.State.DEFERRED, next_attempt_at=later, attempts=3)
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:message_retry", args=[message.pk]), REMOTE_ADDR="192.0.2.8", follow=True)
    assert f"Message {message.queue_id} will be tried again now." in response.content.decode()
    message.refresh_from_db()
    assert message.next_attempt_at <= timezone.now() and message.state == QueuedMessage.State.DEFERRED
    entry = AuditEntry.objects.get(action="message.retry")
    assert entry.actor == cast.support and entry.client_ip == "192.0.2.8" and entry.object_id == str(message.pk)


def test_retrying_a_delivered_message_is_refused_with_a_message(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DELIVERED)
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:message_retry", args=[message.pk]), follow=True)
    assert "only queued, deferred or held messages can be retried" in response.content.decode()
    assert not AuditEntry.objects.filter(action="message.retry").exists()


def test_support_cancels_and_discards(client, cast):
    message = make_message(cast.a, to=("a@example.org", "b@example.org"), state=QueuedMessage.State.DEFERRED)
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:message_cancel", args=[message.pk]),
                           {"action": "discard", "reason": "Spam run from a hacked site"}, REMOTE_ADDR="192.0.2.9")
    assert response.status_code == 302 and response["Location"] == detail(message)
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.CANCELLED
    assert set(message.recipients.values_list("state", flat=True)) == {Recipient.State.CANCELLED}
    assert not message.bounces.exists()
    entry = AuditEntry.objects.get(action="message.cancel")
    assert entry.reason == "Spam run from a hacked site" and entry.client_ip == "192.0.2.9"
    assert entry.after["bounce"] is False


def test_support_cancels_and_bounces_to_the_sender(client, cast):
    message = make_message(cast.a, to=("a@example.org",), state=QueuedMessage.State.QUEUED)
    sign_in_verified(client, cast.support)
    client.post(reverse("relay:message_cancel", args=[message.pk]), {"action": "bounce", "reason": "Wrong list"})
    bounce = message.bounces.get()
    assert bounce.mail_from == "" and list(bounce.recipients.values_list("address", flat=True)) == [message.mail_from]
    assert AuditEntry.objects.get(action="message.cancel").after["bounce_queue_id"] == bounce.queue_id
    client.force_login(cast.a.user)  # the customer reads what happened
    page = client.get(detail(message)).content.decode()
    assert bounce.queue_id in page and "Cancelled by support: Wrong list" in page and "Wrong list" in page


def test_cancelling_a_finished_message_is_a_form_error(client, cast):
    message = make_message(cast.a, state=QueuedMessage.State.DELIVERED)
    sign_in_verified(client, cast.support)
    response = client.post(reverse("relay:message_cancel", args=[message.pk]), {"action": "discard", "reason": "x"})
    assert response.status_code == 400
    assert "only queued, deferred or held messages" in response.content.decode()
    message.refresh_from_db()
    assert message.state == QueuedMessage.State.DELIVERED


def test_support_acts_on_messages_only_from_a_two_factor_verified_session(client, cast):
    message = QueuedMessage.objects.create(customer=cast.a.customer, domain=cast.a.domain, mail_from="info@alpha.test",
                                           subject="waiting")
    client.force_login(cast.support)  # signed in, but the session never passed the code
    # Sent to the code page, as on every support page, and back to the page after it.
    for response in (client.post(reverse("relay:message_retry", args=[message.pk])),
                     client.post(reverse("relay:message_cancel", args=[message.pk]),
                                 {"action": "discard", "reason": "spam"})):
        assert response.status_code == 302 and response.url.startswith(reverse("security:code"))
    assert QueuedMessage.objects.get(pk=message.pk).state == QueuedMessage.State.QUEUED


def make_inbound(tenant, *, sender="someone@example.org") -> QueuedMessage:
    message = QueuedMessage.objects.create(
        direction=QueuedMessage.Direction.INBOUND, customer=tenant.customer, mail_from=sender, header_from=sender,
        subject="Inbound hello", size=100, content=b"Subject: Inbound hello\r\n\r\nhi\r\n")
    Recipient.objects.create(message=message, address=tenant.mailbox.address, mailbox=tenant.mailbox)
    return message


def test_inbound_messages_are_in_the_log_with_their_direction(client, cast):
    inbound, outbound = make_inbound(cast.a), make_message(cast.a)
    assert listed(client, cast.a.user) == {inbound.queue_id, outbound.queue_id}
    html = client.get(reverse("relay:message_list")).content.decode()
    assert "<td>Inbound</td>" in html and "<td>Outbound</td>" in html
    assert "Inbound" in client.get(detail(inbound)).content.decode()
    # The receiving mailbox's own user sees it; another customer does not.
    assert inbound.queue_id in listed(client, mailbox_user(cast.a.mailbox))
    assert_matrix(client, cast, detail(inbound), SEE)


def test_a_search_shorter_than_a_page_runs_once_asking_for_a_whole_page(client, cast):
    """The log's search is not run a second time for a COUNT(*), and its LIMIT is the page's, not the match count:
    below PostgreSQL's estimate of the matches it walks the created_at index through every message."""
    make_message(cast.a, to=("x1@example.org",))
    sign_in_verified(client, cast.support)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("relay:message_list"), {"sender": "a"})
    assert response.context["page"].paginator.count == 1 and len(response.context["page"]) == 1
    assert not [q for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(")]
    selects = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "relay_queuedmessage"."id"')]
    assert len(selects) == 1 and selects[0].endswith("LIMIT 25"), selects
