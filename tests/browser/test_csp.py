"""Content-Security-Policy in a real browser: a script injected into a page does not run, while the page's own
features (htmx swaps, copy buttons, the sending chart and its stylesheet) still work, and nothing of the panel's
own is blocked."""

import pytest
from django.urls import reverse

from accounts.models import Mailbox
from accounts.services.domains import domain_create
from tests.browser.conftest import sign_in
from tests.support.factories import PASSWORD, make_cast

INJECTED = "<script>window.__injected = 'inline ran'</script><img src=x onerror=\"window.__injected = 'onerror ran'\">"

# Every violation the page reports, from the first script on (init scripts run outside the page's CSP).
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline")));
"""


def _inject_into_html(route):
    """Serve the real response, headers and all, with a stored-XSS-like payload added to its body."""
    response = route.fetch()
    body = response.text()
    if "</main>" in body:
        body = body.replace("</main>", INJECTED + "</main>", 1)
    route.fulfill(response=response, body=body)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_injected_inline_script_does_not_run_and_the_pages_still_work(page, live_server, shot):
    cast = make_cast()
    pending = domain_create(actor=None, customer=cast.a.customer, name="pending-alpha.test")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.add_init_script(WATCH)
    sign_in(page, cast.a.user.username, PASSWORD)

    # The header is on every page, and no inline script is allowed by it.
    response = page.goto(reverse("dashboard"))
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "style-src 'self'" in policy

    # A page with markup an attacker managed to store: neither the inline script nor the handler runs.
    page.route("**/domains/**", _inject_into_html)
    page.goto(reverse("domain_detail", args=[pending.pk]))
    page.wait_for_timeout(300)
    assert page.evaluate("window.__injected") is None
    violations = page.evaluate("window.__violations")
    assert any(v.startswith("script-src") for v in violations), violations
    page.unroute("**/domains/**")
    shot("injected-blocked")

    # A script element added at run time is refused as well (the DevTools call itself is not the page).
    page.evaluate("""() => { const s = document.createElement("script");
                             s.textContent = "window.__injected = 'dynamic ran'"; document.body.appendChild(s); }""")
    page.wait_for_timeout(100)
    assert page.evaluate("window.__injected") is None

    # The page's own features: the copy button (static/hostingmail.js) ...
    page.goto(reverse("domain_detail", args=[pending.pk]))
    page.click("button[data-copy='#verification-value']")
    page.wait_for_selector("button[data-copy='#verification-value']:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == page.inner_text("#verification-value")

    # ... an htmx swap (SMTP access switched off in place, no page load) ...
    page.goto(reverse("mailbox_edit", args=[cast.a.mailbox.pk]))
    page.evaluate("window.__same_page = true")
    page.click("#smtp-toggle")
    page.wait_for_selector("#smtp-access .badge.off")
    assert page.evaluate("window.__same_page") is True
    assert not Mailbox.objects.get(pk=cast.a.mailbox.pk).smtp_enabled

    # ... and the sending chart, styled from the stylesheet now that inline style attributes are gone.
    page.goto(reverse("dashboard"))
    chart = page.locator(".sending-chart-svg")
    assert chart.is_visible()
    assert chart.evaluate("(el) => getComputedStyle(el).fontSize") == "11px"
    assert page.locator(".sending-chart rect.bar").count() >= 0
    # Nothing of the panel's own was blocked on these pages.
    assert page.evaluate("window.__violations") == []
    shot("dashboard-chart")
