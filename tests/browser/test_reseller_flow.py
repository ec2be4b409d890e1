"""A reseller admin in a real browser: signs in, creates a customer within the pool, meets the pool's limit."""

import pytest

from accounts.models import Customer, Reseller, User
from tests.browser.conftest import sign_in
from tests.support.factories import PASSWORD


def _fill_customer(page, name: str, mailboxes: int) -> None:
    page.goto("/reseller/customers/new/")
    page.fill("input[name=name]", name)
    page.fill("input[name=username]", name.lower())
    page.fill("input[name=email]", f"{name.lower()}@example.net")
    page.fill("input[name=password]", "long enough secret")
    page.fill("input[name=max_mailboxes]", str(mailboxes))
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.django_db(transaction=True)
def test_reseller_creates_a_customer_within_the_pool_then_meets_its_limit(page, shot, cast):
    # Alpha holds 50 mailboxes of a pool of 80: 30 left.
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_mailboxes=80)
    sign_in(page, "reseller-a", PASSWORD)
    page.goto("/reseller/")
    assert "50 of 80 handed out" in page.inner_text("main")
    shot("pool")

    _fill_customer(page, "Charlie", 20)
    assert "Customer Charlie created" in page.inner_text("main")
    assert Customer.objects.get(name="Charlie").reseller == cast.reseller_a
    assert User.objects.get(username="charlie").customer.name == "Charlie"
    shot("created")

    _fill_customer(page, "Delta", 11)
    assert "Your pool has 10 mailboxes left to hand out." in page.inner_text("main form.card")
    assert not Customer.objects.filter(name="Delta").exists()
    shot("pool-exhausted")

    page.goto("/reseller/customers/")
    assert "Charlie" in page.inner_text("table") and "Bravo" not in page.inner_text("table")
    shot("customers")
