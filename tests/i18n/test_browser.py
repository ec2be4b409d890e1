"""In a real browser (Debian's Chromium through Playwright) set to German: the sign-in page in German, then the
user's own setting switches the panel to English, on a desktop and at phone width; axe finds nothing serious on
the German pages."""

from pathlib import Path

import pytest
from django.urls import reverse

from accounts.models import User
from accounts.services.domains import domain_create
from accounts.services.tenants import customer_create, user_create
from tests.browser.conftest import browser  # noqa: F401  (the session's Chromium)
from tests.browser.test_accessibility import AXE, DESKTOP, PHONE, serious_violations

PASSWORD = "shop owner secret"


def _context(browser, live_server, viewport):  # noqa: F811
    assert Path(AXE).exists(), f"{AXE} is missing: run npm ci in tests/browser (.ci/peers does)"
    context = browser.new_context(base_url=live_server.url, viewport=viewport, locale="de-DE")
    # An init script runs outside the page's Content-Security-Policy, which allows no inline script.
    context.add_init_script(path=str(AXE))
    return context


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_german_browser_signs_in_in_german_and_switches_the_panel_to_english(browser, live_server,  # noqa: F811
                                                                              viewport):
    customer = customer_create(actor=None, name="Shop")
    user = user_create(actor=None, username="shop", password=PASSWORD, role=User.Role.CUSTOMER, customer=customer)
    domain = domain_create(actor=None, customer=customer, name="shop.test")  # pending: a record to copy
    context = _context(browser, live_server, viewport)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    failures = []
    try:
        page.goto(reverse("login"))
        assert page.get_attribute("html", "lang") == "de"
        assert page.locator("label[for=language-switcher]").inner_text() == "Sprache"
        assert page.locator("#language-switcher").input_value() == "de"
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        failures += serious_violations(page, "the sign-in page in German")

        page.fill("input[name=username]", "shop")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        # The copy button's answer (static/hostingmail.js) is in the page's language too.
        page.goto(reverse("domain_detail", args=[domain.pk]))
        page.click("button[data-copy='#verification-value']")
        page.wait_for_selector("button[data-copy='#verification-value']:has-text('Kopiert')")
        page.goto(reverse("security:page"))
        assert page.get_attribute("html", "lang") == "de"
        form = page.locator("#language-setting")
        assert form.locator("h2").inner_text() == "Sprache"
        failures += serious_violations(page, "the security page in German")
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")

        form.get_by_label("Sprache").select_option("en")
        with page.expect_navigation():
            form.get_by_role("button", name="Speichern").click()
        assert page.get_attribute("html", "lang") == "en"
        assert page.locator(".msg.success").inner_text() == "The panel now shows in the language you chose."
        assert page.locator("#language-setting h2").inner_text() == "Language"
        user.refresh_from_db()
        assert user.language == "en"
        page.goto(reverse("domain_detail", args=[domain.pk]))  # every page, not just the one that changed it
        assert page.get_attribute("html", "lang") == "en"
        page.click("button[data-copy='#verification-value']")
        page.wait_for_selector("button[data-copy='#verification-value']:has-text('Copied')")

        # Signed out, the German browser still gets the language the user chose.
        page.locator("header button", has_text="Sign out").click()
        page.wait_for_load_state()
        page.goto(reverse("login"))
        assert page.get_attribute("html", "lang") == "en"
        assert page.locator("label[for=language-switcher]").inner_text() == "Language"
    finally:
        context.close()
    assert failures == [], "\n".join(failures)
