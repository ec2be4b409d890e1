"""Support staff in a real browser: two-factor sign-in, search, customer page, raise a quota, see it audited."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, Customer
from tests.browser.conftest import sign_in
from tests.support.factories import PASSWORD
from tests.support.signin import code_for


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_support_enrols_two_factor_finds_a_customer_raises_a_quota_and_sees_it_audited(page, shot, cast):
    sign_in(page, "support", PASSWORD)
    # First sign-in of a support user: enrol an authenticator before anything else.
    assert page.url.endswith("/login/two-factor/")
    secret = page.inner_text("#totp-secret")
    device = TOTPDevice.objects.get(user=cast.support, confirmed=False)
    assert secret.strip() and page.locator(".qr svg").count() == 1
    shot("enrol")
    page.fill("input[name=token]", code_for(device))
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#recovery-codes li").count() == 10
    shot("recovery-codes")
    page.click("text=I have stored them")
    page.wait_for_load_state()

    # Sign out and in again: now the code is asked for at every sign-in.
    page.click("header button:has-text('Sign out')")
    page.wait_for_load_state()
    sign_in(page, "support", PASSWORD)
    assert page.url.endswith("/login/code/")
    device.refresh_from_db()
    page.fill("input[name=token]", code_for(device, 1))
    page.click("button[type=submit]")
    page.wait_for_load_state()
    shot("signed-in")

    page.click("nav >> text=Support")
    page.wait_for_load_state()
    page.fill("input[name=q]", "alpha.test")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_load_state()
    assert "alpha.test" in page.inner_text("table[data-kind=domains]")
    assert "bravo" not in page.inner_text("main").lower()
    shot("search")

    page.click("table[data-kind=domains] a.customer-link")
    page.wait_for_load_state()
    assert page.inner_text("h1").startswith("Alpha")
    assert "Sent today" in page.inner_text("#usage")
    shot("customer")

    page.click("text=Change plan limits")
    page.wait_for_load_state()
    page.fill("input[name=send_per_day]", "5000")
    page.click("button[type=submit]")  # no reason: refused
    page.wait_for_load_state()
    assert Customer.objects.get(pk=cast.a.customer.pk).send_per_day is None
    page.fill("input[name=reason]", "Ticket 4711: newsletter season")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "Limits of Alpha saved" in page.inner_text("main")
    assert Customer.objects.get(pk=cast.a.customer.pk).send_per_day == 5000
    shot("limit-raised")

    page.click("nav >> text=Audit log")
    page.wait_for_load_state()
    page.fill("input[name=action]", "customer.limits")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    row = page.inner_text("#audit tbody tr")
    assert "customer.limits" in row and "Ticket 4711: newsletter season" in row and "5000" in row
    assert AuditEntry.objects.get(action="customer.limits").after == {"send_per_day": 5000}
    shot("audit")
