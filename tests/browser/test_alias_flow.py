"""A customer creates an alias and a catch-all in a real browser; the MX's recipient lookup sees both."""

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
    assert resolve_recipient("team@shop.test") == Route(mailbox_ids=(orders.pk,), external=("partner@example.org",))

    # The catch-all, on the domain's page.
    page.goto(f"/domains/{domain.pk}/")
    assert "team@shop.test" in page.inner_text("main")
    page.fill("#catchall-form input[name=catchall]", "orders@shop.test")
    page.click("#catchall-form button[type=submit]")
    page.wait_for_selector("text=The catch-all of shop.test is saved.")
    assert page.input_value("#catchall-form input[name=catchall]") == "orders@shop.test"
    shot("domain-catchall")
    assert resolve_recipient("anything@shop.test") == Route(mailbox_ids=(orders.pk,), external=())
