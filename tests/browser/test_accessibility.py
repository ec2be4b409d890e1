"""axe-core (tests/browser/node_modules, installed by `npm ci` from .ci/peers) in a real browser on every panel
page of the authorization matrix, and on each form's answer to an empty submit: no serious or critical violation.
The main pages again at phone width (390 px): no sideways scrolling of the page, and a table wider than the screen
scrolls in a named region the keyboard reaches. Each page is checked once (at each width), as the first role in
ROLES that may open it, and each role's dashboard as that role: the frame around a page differs between roles only
in the navigation, which each role's dashboard shows.

One browser, one context per role (signed in by the matrix's own clients' session cookies), the pages in a loop.
"""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Error as PlaywrightError

from tests.test_authorization_matrix import TABLE, _url, panel_urls, world  # noqa: F401

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
# One role of each kind: tenant B's reseller and customer see the same pages as A's, with B's data. The customer
# first, so that the pages customers use are checked as customers see them.
ROLES = ("customer_a", "mailbox_a", "reseller_a", "support", "anonymous")
# Checked for every role that may open them: each role's navigation is on its dashboard.
EVERY_ROLE = {"dashboard"}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# The pages people use most, checked again at phone width.
MAIN_PAGES = {"dashboard", "domain_list", "domain_detail", "mailbox_list", "mailbox_edit", "alias_list",
              "credential_list", "relay:message_list", "relay:message_detail", "relay:lockout_list",
              "relay:quarantine_list", "security:audit_log", "security:page", "support:home", "support:customer",
              "reseller:home", "reseller:customers", "reseller:customer", "plan:home", "api_key_list", "webhook_list",
              "login", "password_reset"}

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v =>
    `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | ")}`);
}"""

# An empty submit of the page's main form, as the matrix's POST {}: the page answers with the form's errors.
SUBMIT_EMPTY = """() => {
  const token = document.querySelector("main form input[name=csrfmiddlewaretoken]");
  if (!token) return false;
  const form = document.createElement("form");
  form.method = "post";
  form.action = location.pathname + location.search;
  form.append(token.cloneNode());
  document.body.append(form);
  form.submit();
  return true;
}"""

PAGE_WIDTH = """() => ({page: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth,
  regions: [...document.querySelectorAll(".table-wrap")].filter(w => w.scrollWidth > w.clientWidth + 1)
    .map(w => ({tabindex: w.getAttribute("tabindex"), role: w.getAttribute("role"),
                label: w.getAttribute("aria-label") || ""}))})"""

FOCUSED = """() => { const e = document.activeElement;
  return {tag: e.tagName, id: e.id, invalid: e.getAttribute("aria-invalid"), cls: e.className}; }"""


def pages_for(role: str, world) -> list[tuple[str, str, bool]]:
    """(url name, url, whether an empty POST answers with the form again) for each page the role may open."""
    pages = []
    for key, route, _ in panel_urls():
        spec = TABLE[key]
        for tenant in ("a", "b") if spec.kwargs else (None,):
            if spec.get.for_role(role, tenant) != 200:
                continue
            url = _url(key, route, spec, world["objects"][tenant or "a"])
            form_again = spec.post is not None and spec.post.for_role(role, tenant) == 200
            pages.append((key, url, form_again))
            break  # one object of a kind is enough
    return pages


def signed_in_context(browser, live_server, world, role: str):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    cookie = world["clients"][role].cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie is not None:
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])
    # An init script runs outside the page's Content-Security-Policy, which allows no inline script.
    context.add_init_script(path=str(AXE))
    return context


def serious_violations(page, where: str) -> list[str]:
    return [f"{where}: {line}" for line in page.evaluate(RUN_AXE)]


@pytest.mark.browser
@pytest.mark.timeout(900)  # some 200 pages, each checked by axe: minutes, not seconds
@pytest.mark.django_db(transaction=True)
def test_no_serious_axe_violation_on_any_page_for_any_role(browser, live_server, world):
    assert AXE.exists(), f"{AXE} is missing: run npm ci in tests/browser (.ci/peers does)"
    failures, checked, scrolling_tables = [], 0, 0
    got, posted, narrow = set(), set(), set()  # the url names checked after a GET, an empty POST, at phone width
    roles_checked, html_pages = set(), set()
    for role in ROLES:
        context = signed_in_context(browser, live_server, world, role)
        page = context.new_page()
        page.set_default_timeout(15_000)
        pages = pages_for(role, world)
        for key, url, form_again in pages:
            again = key in EVERY_ROLE
            check_get = again or key not in got
            check_post = form_again and (again or key not in posted)
            if not (check_get or check_post):
                continue  # checked already, as an earlier role
            got.add(key)
            try:
                response = page.goto(url)
            except PlaywrightError as exc:
                if "Download is starting" in str(exc):
                    continue  # a profile or CSV file, not a page
                raise
            if not response.headers.get("content-type", "").startswith("text/html"):
                continue  # metrics, health, the brand stylesheet, profiles and CSV downloads
            checked += 1
            html_pages.add(key)
            roles_checked.add(role)
            if check_get:
                failures += serious_violations(page, f"GET {url} as {role}")
            if check_post and page.locator("main form input[name=csrfmiddlewaretoken]").count():
                posted.add(key)
                with page.expect_navigation():
                    page.evaluate(SUBMIT_EMPTY)
                failures += serious_violations(page, f"POST {url} as {role}")
        page.set_viewport_size(PHONE)
        for key, url, _ in pages:
            if key not in MAIN_PAGES or (key in narrow and key not in EVERY_ROLE):
                continue
            narrow.add(key)
            page.goto(url)
            where = f"GET {url} as {role} at 390 px"
            failures += serious_violations(page, where)
            width = page.evaluate(PAGE_WIDTH)
            if width["page"] > width["viewport"]:
                failures.append(f"{where}: the page scrolls sideways ({width['page']} px wide)")
            scrolling_tables += len(width["regions"])
            for region in width["regions"]:
                if region["tabindex"] != "0" or region["role"] != "region" or not region["label"]:
                    failures.append(f"{where}: a table scrolls sideways in an unnamed or unreachable box {region}")
        context.close()
    print(f"{checked} pages of {len(html_pages)} kinds checked, {len(posted)} forms submitted empty, "
          f"{len(narrow)} kinds at phone width")
    assert len(html_pages) > 60, len(html_pages)
    assert roles_checked == set(ROLES)
    assert scrolling_tables > 0  # the phone-width check met wide tables, and found each in a named region
    assert failures == [], "\n".join(failures)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_skip_link_first_then_focus_on_the_first_error(browser, live_server, world):
    context = signed_in_context(browser, live_server, world, "customer_a")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(reverse("mailbox_add", args=[world["objects"]["a"]["domain"].pk]))
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        assert page.locator(".skip-link").is_visible()  # shown while focused
        page.keyboard.press("Enter")
        assert page.evaluate(FOCUSED)["id"] == "content"

        # A submit the server refuses: the keyboard lands on the first field in error, the summary is announced.
        with page.expect_navigation():
            page.evaluate(SUBMIT_EMPTY)
        focused = page.evaluate(FOCUSED)
        first_invalid = page.locator("main [aria-invalid=true]").first.get_attribute("id")
        assert focused["invalid"] == "true" and focused["id"] == first_invalid, focused
        assert page.locator("#error-summary[role=alert]").is_visible()

        # A form with only errors of its own (no field in error): the summary takes the focus.
        page.goto(reverse("login"))
        context.clear_cookies()
        page.goto(reverse("login"))
        page.fill("input[name=username]", "nobody@example.test")
        page.fill("input[name=password]", "wrong password")
        with page.expect_navigation():
            page.click("main button[type=submit]")
        assert page.evaluate(FOCUSED)["id"] == "error-summary"
    finally:
        context.close()


@pytest.mark.browser
def test_favicon_is_served(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    try:
        response = page.goto("/favicon.ico")
        assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
        assert response.url.endswith("/static/favicon.svg")
    finally:
        context.close()
