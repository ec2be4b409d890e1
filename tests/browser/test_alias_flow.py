"""A customer creates an alias and a catch-all in a real browser; the MX takes mail for both and the customer sees
it in the message log as inbound."""

import pytest

from accounts.models import User
from accounts.selectors.recipients import Route, resolve_recipient
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.tenants import customer_create, user_create
from tests.browser.conftest import sign_in

PASSWORD = "shop owner secret"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_customer_creates_an_alias_and_a_catch_all(page, shot):
    customer = customer_create(actor=None, name="Shop", max_aliases=5)
    user_create(actor=None, username="shop", password=PASSWORD, role=User.Role.CUSTOMER, customer=customer)
    domain = domain_create(actor=None, customer=customer, name="shop.test", verified=True)
    orders = mailbox_create(actor=None, domain=domain, local_part="orders", password="mailbox secret 2026",
                            quota_mb=100)

    sign_in(page, "shop", PASSWORD)
    page.click("nav >> text=Aliases")
    assert "No aliases yet." in page.inner_text("main")
    page.click("text=… @shop.test")

    # A destination that does not exist here is refused next to the field.
    page.fill("input[name=local_part]", "Team")
    page.fill("textarea[name=destinations]", "nobody@shop.test")
    page.click("main button[type=submit]")
    assert "There is no mailbox or alias nobody@shop.test." in page.inner_text("main form")
    shot("alias-error")
    page.fill("textarea[name=destinations]", "orders@shop.test\npartner@example.org")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Alias team@shop.test was created.")
    assert "orders@shop.test, partner@example.org" in page.inner_text("main table")
    shot("alias-list")
    team = resolve_recipient("team@shop.test")
    assert (team.mailbox_ids, team.external) == ((orders.pk,), ("partner@example.org",))

    # The catch-all, on the domain's page.
    page.goto(f"/domains/{domain.pk}/")
    assert "team@shop.test" in page.inner_text("main")
    page.fill("#catchall-form input[name=catchall]", "orders@shop.test")
    page.click("#catchall-form button[type=submit]")
    page.wait_for_selector("text=The catch-all of shop.test is saved.")
    assert page.input_value("#catchall-form input[name=catchall]") == "orders@shop.test"
    shot("domain-catchall")
    assert resolve_recipient("anything@shop.test") == Route(mailbox_ids=(orders.pk,), external=())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_mail_to_a_new_alias_and_the_catch_all_shows_in_the_message_log_as_inbound(page, shot, mx_factory,
                                                                                    dns_server):
    from tests.support.inbound import mta_client
    from tests.support.smtp import send

    customer = customer_create(actor=None, name="Shop", max_aliases=5)
    user_create(actor=None, username="shop", password=PASSWORD, role=User.Role.CUSTOMER, customer=customer)
    domain = domain_create(actor=None, customer=customer, name="shop.test", verified=True)
    mailbox_create(actor=None, domain=domain, local_part="orders", password="mailbox secret 2026", quota_mb=100)
    dns_server(txt=["other.example,v=spf1 -all"])  # the sender's zone exists without records: SPF none
    mx = mx_factory()

    sign_in(page, "shop", PASSWORD)
    page.click("nav >> text=Aliases")
    page.click("text=… @shop.test")
    page.fill("input[name=local_part]", "sales")
    page.fill("textarea[name=destinations]", "orders@shop.test")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Alias sales@shop.test was created.")
    page.goto(f"/domains/{domain.pk}/")
    page.fill("#catchall-form input[name=catchall]", "orders@shop.test")
    page.click("#catchall-form button[type=submit]")
    page.wait_for_selector("text=The catch-all of shop.test is saved.")

    for to, subject in (("sales@shop.test", "Order 1001"), ("anything@shop.test", "Lost and found")):
        content = (f"From: Alice <alice@sender.example>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHello.\r\n").encode()
        with mta_client(mx.port) as client:
            replies = send(client, sender="alice@sender.example", recipients=[to], data=content)
        assert replies[-1][0] == 250, replies

    page.click("nav >> text=Sent mail")
    rows = page.locator("table.messages tbody tr")
    assert rows.count() == 2
    for subject in ("Order 1001", "Lost and found"):
        text = rows.filter(has_text=subject).inner_text()
        assert "Inbound" in text and "alice@sender.example" in text and "orders@shop.test" in text, text
    shot("message-log-inbound")
    rows.filter(has_text="Order 1001").locator("a.mono").click()
    page.wait_for_selector("text=received by the MX")
    assert "Inbound (received by the MX" in page.inner_text("main")
