"""The DNS journey in a real browser: a domain just added shows every record; each Copy button puts exactly the
value (or the short host) on the clipboard, and "Copy all as zone lines" the whole zone, at desktop and phone
widths."""

import pytest
from django.urls import reverse

from accounts import dnscheck
from accounts.services.domains import domain_create
from tests.browser.conftest import sign_in
from tests.support.factories import PASSWORD, make_cast

KINDS = ("verification", "mx", "spf", "dkim", "dmarc", "autoconfig", "autodiscover", "srv-submissions",
         "srv-submission", "srv-imaps", "srv-autodiscover")


def _clipboard_after_click(page, selector: str) -> str:
    page.evaluate("navigator.clipboard.writeText('')")
    page.click(f"button[data-copy='{selector}']")
    page.wait_for_selector(f"button[data-copy='{selector}']:has-text('Copied')")
    return page.evaluate("navigator.clipboard.readText()")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 390])
def test_every_record_copies_from_the_moment_the_domain_is_added(page, live_server, shot, width):
    cast = make_cast()
    page.set_viewport_size({"width": width, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, cast.a.user.username, PASSWORD)
    page.goto(reverse("domain_add"))
    page.fill("input[name=name]", "fresh-shop.test")
    page.click("main button[type=submit]")
    page.wait_for_selector("#record-dkim")
    domain = cast.a.customer.domains.get(name="fresh-shop.test")
    published = dnscheck.records_to_publish(domain)
    records = {r["kind"]: r for r in [published["verification"], *published["records"]]}

    for kind in KINDS:
        assert page.is_visible(f"#record-{kind}"), kind
    assert "We re-check these records in the background" in page.inner_text("#dns-schedule")
    assert "not signing" in page.inner_text("#dkim-state")
    shot(f"records-{width}")

    assert _clipboard_after_click(page, "#dkim-value") == records["dkim"]["value"]
    assert _clipboard_after_click(page, "#dkim-host") == f"{domain.dkim_selector}._domainkey"
    assert _clipboard_after_click(page, "#mx-host") == "@"
    assert _clipboard_after_click(page, "#srv-submission-value") == records["srv-submission"]["value"]
    assert _clipboard_after_click(page, "#verification-value") == records["verification"]["value"]

    zone = _clipboard_after_click(page, "#zone-lines")
    assert zone.splitlines() == [record["zone_line"] for record in records.values()]
    assert zone.splitlines()[0].startswith(f"_hostingmail.fresh-shop.test. IN TXT ")
