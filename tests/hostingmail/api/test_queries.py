"""Lists and details cost a constant number of queries: a page of 2 rows and a page of 8 take as many (no query
per row), and a message with one recipient as many as one with six (bench/api.py measures the time at scale)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Customer, User
from accounts.services.aliases import alias_create
from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from accounts.services.login_links import login_link_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.tenants import customer_create
from accounts.services.webhooks import event_record, webhook_endpoint_create
from relay.models import DeliveryAttempt, QueuedMessage, Recipient
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db

ROWS = 8
LISTS = ["customers", "domains", "mailboxes", "credentials", "aliases", "users", "messages", "webhooks"]


def _message(customer, domain, mailbox, recipients: int) -> QueuedMessage:
    message = QueuedMessage.objects.create(customer=customer, domain=domain, mailbox=mailbox,
                                           mail_from=mailbox.address, subject="hello")
    for n in range(recipients):
        recipient = Recipient.objects.create(message=message, address=f"r{n}@example.org")
        DeliveryAttempt.objects.create(message=message, recipient=recipient, code=451, reply="later",
                                       outcome=Recipient.State.DEFERRED)
    return message


@pytest.fixture
def many(cast, settings):
    settings.API_RATE_LIMIT = None
    customer = cast.a.customer
    Customer.objects.filter(pk=customer.pk).update(max_domains=100, max_mailboxes=100)
    for n in range(ROWS):
        customer_create(actor=None, name=f"Extra {n}", reseller=cast.reseller_a)
        domain = domain_create(actor=None, customer=customer, name=f"extra{n}.test", verified=True)
        mailbox = mailbox_create(actor=None, domain=domain, local_part=f"box{n}", password=PASSWORD, quota_mb=1)
        credential_create(actor=None, domain=domain, mailbox=mailbox)
        alias_create(actor=None, domain=domain, local_part=f"alias{n}", destinations=[mailbox.address])
        User.objects.create_user(username=f"alpha-{n}", password=PASSWORD, role=User.Role.CUSTOMER, customer=customer)
        webhook_endpoint_create(actor=None, customer=customer, url=f"https://hooks{n}.alpha.test/in")
        _message(customer, domain, mailbox, recipients=2)
        login_link_create(actor=None, user=cast.a.user)
    event_record(type="customer.restored", customer_id=customer.pk, payload={})
    return cast


def _queries(client, url: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(ctx), response.json()


# A customer's key sees one customer: its own.
@pytest.mark.parametrize(("who", "name"), [(who, name) for who in ("support", "reseller_a", "customer_a")
                                           for name in LISTS if (who, name) != ("customer_a", "customers")])
def test_a_list_costs_the_same_queries_at_two_page_sizes(many, keys, name, who):
    client = keys.client(who)
    client.get("/api/v1/customers/")  # the key's last use is written at its first request: not a row's cost
    small, page = _queries(client, f"/api/v1/{name}/?page_size=2")
    large, full = _queries(client, f"/api/v1/{name}/?page_size={ROWS}")
    assert len(page["results"]) == 2 and len(full["results"]) == ROWS, (name, full["count"])
    assert small == large, f"{name}: {small} queries for 2 rows, {large} for {ROWS}"


def test_the_webhook_delivery_log_costs_the_same_queries_at_two_page_sizes(many, keys):
    endpoint = many.a.customer.webhook_endpoints.order_by("pk").first()
    for n in range(ROWS):
        event_record(type="customer.restored", customer_id=many.a.customer.pk, payload={"n": n})
    client = keys.client("customer_a")
    client.get("/api/v1/customers/")
    url = f"/api/v1/webhooks/{endpoint.pk}/deliveries/"
    assert _queries(client, f"{url}?page_size=2")[0] == _queries(client, f"{url}?page_size={ROWS}")[0]


def test_a_message_detail_costs_the_same_queries_whatever_its_recipients(many, keys):
    a = many.a
    one, six = (_message(a.customer, a.domain, a.mailbox, recipients=n) for n in (1, 6))
    client = keys.client("customer_a")
    client.get("/api/v1/customers/")
    q_one, body_one = _queries(client, f"/api/v1/messages/{one.pk}/")
    q_six, body_six = _queries(client, f"/api/v1/messages/{six.pk}/")
    assert len(body_six["recipients"]) == 6 and len(body_six["recipients"][5]["attempts"]) == 1
    assert q_one == q_six


def _message_selects(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "relay_queuedmessage"."id"')]


def test_a_search_shorter_than_a_page_is_fetched_once_and_not_counted(many, keys):
    """One match of a sender search: one SELECT of messages asking for a whole page (LIMIT 50, not LIMIT 1: below
    PostgreSQL's estimate of the matches it walks the created_at index through the whole table) and no COUNT(*)
    running the search a second time."""
    client = keys.client("support")
    client.get("/api/v1/customers/")
    address = many.a.customer.domains.get(name="extra3.test").mailboxes.get().address
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(f"/api/v1/messages/?sender={address}").json()
    assert body["count"] == 1 and [m["mail_from"] for m in body["results"]] == [address]
    assert not [q for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(")]
    selects = _message_selects(ctx)
    assert len(selects) == 1 and selects[0].endswith("LIMIT 50"), selects


def test_a_list_longer_than_a_page_is_counted_and_its_last_page_asks_for_a_whole_page(many, keys):
    client = keys.client("customer_a")
    client.get("/api/v1/customers/")
    total = QueuedMessage.objects.filter(customer=many.a.customer).count()
    assert total == ROWS
    first = client.get("/api/v1/messages/?page_size=3").json()
    assert first["count"] == ROWS and len(first["results"]) == 3 and first["next"]
    with CaptureQueriesContext(connection) as ctx:
        last = client.get("/api/v1/messages/?page_size=3&page=3").json()
    assert last["count"] == ROWS and len(last["results"]) == ROWS - 6 and last["next"] is None
    seen = {m["id"] for page in (first, last) for m in page["results"]}
    assert len(seen) == 3 + ROWS - 6
    assert len([q for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(")]) == 1
    selects = _message_selects(ctx)
    assert len(selects) == 1 and selects[0].endswith("LIMIT 3 OFFSET 6"), selects


def test_message_list_and_detail_read_only_what_they_show(many, keys):
    """The list names the customer by id (no join) and neither reads the columns only the panel's message page shows
    (rspamd's symbols, Authentication-Results) nor, for the detail, the bounces sent back."""
    a = many.a
    message = _message(a.customer, a.domain, a.mailbox, recipients=2)
    client = keys.client("customer_a")
    client.get("/api/v1/customers/")
    with CaptureQueriesContext(connection) as listed:
        assert client.get("/api/v1/messages/").json()["results"][0]["customer"] == a.customer.pk
    with CaptureQueriesContext(connection) as detail:
        body = client.get(f"/api/v1/messages/{message.pk}/").json()
    assert len(body["recipients"]) == 2 and body["customer"] == a.customer.pk
    for ctx in (listed, detail):
        selects = _message_selects(ctx)
        assert selects and not [q for q in selects if "accounts_customer" in q or "spam_symbols" in q
                                or "auth_results" in q], selects
    assert len(_message_selects(detail)) == 1  # no query for the bounces of the message
