"""The API's docs (/api/docs/, Swagger UI from local files) in a real browser: the operations render, no request
leaves the server, and "Try it out" on a GET with an API key answers with the key's own data."""

from urllib.parse import urlsplit

import pytest

from accounts.services.api_keys import api_key_create
from tests.support.factories import make_tenant


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_stays_local_and_tries_a_get_with_a_key(page, shot, live_server):
    tenant = make_tenant("Alpha", "alpha.test")
    make_tenant("Bravo", "bravo.test")  # another customer's domain, which the key must not see
    key = api_key_create(actor=None, user=tenant.user, name="docs").secret
    server = urlsplit(live_server.url).netloc
    outside, errors = [], []

    def only_local(route):
        if urlsplit(route.request.url).netloc == server or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/api/docs/")
    page.wait_for_selector(".opblock")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/domains/" in paths and "/api/v1/customers/{id}/login-links/" in paths, paths
    assert page.locator(".opblock").count() >= 40
    shot("rendered")

    # Authorize with the key (the bearer scheme), then try GET /api/v1/domains/.
    page.click("button.authorize")
    page.fill(".modal-ux input", key)
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")
    operation = page.locator("#operations-domains-v1_domains_list")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    status.wait_for()
    assert status.inner_text().strip() == "200"
    body = operation.locator(".live-responses-table .response-col_description pre").first.inner_text()
    assert '"name": "alpha.test"' in body and "bravo.test" not in body
    shot("tried")
    assert outside == [], f"requests outside the server: {outside}"
    assert errors == [], errors
