"""Issue 21's journeys in a real browser, at desktop width and at a 390 px phone's: forgotten password by e-mail,
the reseller's forms (errors at once, plan templates, brand colour, sign-in by host), the support console (search,
a mistyped code, recovery codes), the audit log in words, and CSV import and export."""

import csv
import io
import re
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from accounts.models import Customer, Mailbox, PlanTemplate, Reseller, User
from accounts.services.limits import limit_set
from accounts.services.mailboxes import mailbox_update
from relay.models import QueuedMessage
from tests.browser.conftest import sign_in
from tests.support.factories import PASSWORD
from tests.support.signin import code_for, enrol_totp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(WIDTHS))
def sized(request, browser, live_server):
    """A page at desktop width and at a phone's; the test's screenshots are named after the width."""
    context = browser.new_context(base_url=live_server.url, viewport=WIDTHS[request.param], accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.width_name = request.param
    yield page
    context.close()


def _shot(page, request, step: str) -> None:
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / f"{request.node.name}-{step}.png"), full_page=True)


def _fits(page) -> bool:
    """Nothing wider than the screen: the page never scrolls sideways (tables scroll inside their own box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def _submit(page, selector: str = "main button[type=submit]") -> None:
    page.click(selector)
    page.wait_for_load_state()


def test_forgotten_password_by_email_through_the_queue(sized, request, cast, settings):
    page = sized
    settings.EMAIL_BACKEND = "relay.outbox.QueueEmailBackend"
    User.objects.filter(pk=cast.a.user.pk).update(email="anna@alpha.test")
    page.goto("/login/")
    page.click("text=Forgot password?")
    page.wait_for_load_state()
    page.fill("input[name=email]", "anna@alpha.test")
    _submit(page)
    assert "Check your mail" in page.inner_text("h1") and _fits(page)
    _shot(page, request, "sent")

    message = QueuedMessage.objects.get(recipients__address="anna@alpha.test")
    body = message_from_bytes(bytes(message.content), policy=default).get_body(("plain",)).get_content()
    link = re.search(r"https?://[^/\s]+(/password-reset/\S+/)", body)[1]
    page.goto(link)
    page.fill("input[name=new_password1]", "a fresh long passphrase")
    page.fill("input[name=new_password2]", "a fresh long passphrase")
    _submit(page)
    assert "Password changed" in page.inner_text("h1")
    page.click("main >> text=Sign in")
    page.wait_for_load_state()
    sign_in(page, "alpha-user", "a fresh long passphrase")
    assert page.inner_text("h1") == "Alpha"
    _shot(page, request, "signed-in")
    # The link was for one use.
    page.goto(link)
    assert "does not work any more" in page.inner_text("main")


def test_reseller_forms_templates_brand_and_host(sized, request, cast, settings):
    page = sized
    settings.ALLOWED_HOSTS = ["*"]
    sign_in(page, "reseller-a", PASSWORD)
    page.goto("/reseller/plans/new/")
    page.fill("input[name=name]", "Small office")
    page.fill("input[name=max_mailboxes]", "5")
    page.fill("input[name=max_message_size_mb]", "20")
    _submit(page)
    assert "Plan template Small office is saved" in page.inner_text("main") and _fits(page)
    template = PlanTemplate.objects.get(name="Small office")
    assert template.max_message_size == 20 * 1024 * 1024

    # A new customer from the template, with two mistakes at once: the password survives them.
    page.goto("/reseller/customers/new/")
    page.select_option("select[name=template]", label="Small office")
    page.click("#template-chooser button")
    page.wait_for_load_state()
    assert page.input_value("input[name=max_mailboxes]") == "5"
    assert page.input_value("input[name=max_message_size_mb]") == "20"
    page.fill("input[name=name]", "Alpha")  # taken
    page.fill("input[name=username]", "alpha-user")  # taken
    page.fill("input[name=password]", "long enough secret 7")
    _submit(page, "main form:not(#template-chooser) button[type=submit]")
    errors = page.inner_text("main form:not(#template-chooser)")
    assert "already exists" in errors and "is taken" in errors
    assert page.input_value("input[name=password]") == "long enough secret 7"
    _shot(page, request, "errors-at-once")
    page.fill("input[name=name]", "Charlie")
    page.fill("input[name=username]", "charlie")
    _submit(page, "main form:not(#template-chooser) button[type=submit]")
    charlie = Customer.objects.get(name="Charlie")
    assert charlie.max_mailboxes == 5 and charlie.max_message_size == 20 * 1024 * 1024
    for text in ("Dashboard of Charlie", "Domains of Charlie", "Mailboxes of Charlie"):
        assert page.locator("#customer-links a", has_text=text).count() == 1
    _shot(page, request, "customer")

    # The brand colour: refused when white text on it is unreadable, applied everywhere otherwise.
    page.goto("/reseller/branding/")
    page.fill("input[name=brand_color]", "#ffd700")
    page.fill("input[name=panel_title]", "Acme Mail")
    _submit(page)
    assert "contrast ratio" in page.inner_text("main") and Reseller.objects.get(pk=cast.reseller_a.pk).brand_color == ""
    page.fill("input[name=brand_color]", "#0b6e4f")
    page.fill("input[name=panel_host]", "acme.localhost")  # Chromium resolves *.localhost to loopback
    _submit(page)
    assert Reseller.objects.get(pk=cast.reseller_a.pk).brand_color == "#0b6e4f"
    background = page.eval_on_selector("main button[type=submit]", "b => getComputedStyle(b).backgroundColor")
    assert background == "rgb(11, 110, 79)"
    _shot(page, request, "branded")

    # Its customers' sign-in page, opened at its host, wears the brand before anyone signs in.
    page.click("header button:has-text('Sign out')")
    page.wait_for_load_state()
    page.goto(re.sub(r"//[^/:]+", "//acme.localhost", page.url, count=1).split("/login")[0] + "/login/")
    assert "Acme Mail" in page.inner_text("header")
    assert page.eval_on_selector("main button[type=submit]", "b => getComputedStyle(b).backgroundColor") == \
        "rgb(11, 110, 79)"
    _shot(page, request, "sign-in-branded")


def test_support_console_search_mistyped_code_and_recovery_codes(sized, request, cast):
    page = sized
    device = enrol_totp(cast.support)
    sign_in(page, "support", PASSWORD)
    page.fill("input[name=token]", "000000" if code_for(device) != "000000" else "111111")
    _submit(page)
    assert "That code is not right" in page.inner_text("main")
    page.fill("input[name=token]", code_for(device))
    _submit(page)
    assert page.url.endswith("/") and "/login" not in page.url

    page.goto("/support/")
    box = page.locator(".searchbox input[type=search]")
    assert box.evaluate("e => getComputedStyle(e).borderRadius") != "0px"
    box.fill("inf")
    _submit(page, ".searchbox button")
    hits = page.locator("a.hit")
    assert hits.count() >= 3 and _fits(page)
    _shot(page, request, "search")
    page.click("table[data-kind=mailboxes] a.hit >> text=info@bravo.test")
    page.wait_for_load_state()
    assert "info@bravo.test" in page.inner_text("main")

    page.goto("/security/")
    page.click("main button:has-text('recovery codes')")
    page.wait_for_load_state()
    codes = [line.strip() for line in page.inner_text("#recovery-codes").splitlines() if line.strip()]
    assert len(codes) == 10
    with page.expect_download() as info:
        page.click("#download-codes")
    download = info.value
    assert download.suggested_filename == "recovery-codes.txt"
    assert Path(download.path()).read_text().splitlines()[2:] == codes
    _shot(page, request, "recovery-codes")


def test_audit_log_reads_as_what_changed(sized, request, cast):
    page = sized
    mailbox_update(actor=cast.a.user, mailbox=cast.a.mailbox, smtp_enabled=False, client_ip="192.0.2.1")
    limit_set(actor=cast.support, obj=cast.a.customer, changes={"send_per_hour": 500}, reason="Ticket 12",
              client_ip="198.51.100.9")
    sign_in(page, "alpha-user", PASSWORD)
    page.goto("/audit/")
    table = page.inner_text("#audit")
    assert "SMTP access turned off" in table
    assert "Sending limit per hour no limit of its own → 500" in table and "reason: Ticket 12" in table
    assert "198.51.100.9" not in table and "support" not in table.replace("Support", "")
    assert "verification_token" not in table and "password_hash" not in table
    _shot(page, request, "audit")


def test_bulk_import_preview_then_import_and_passwords_once(sized, request, cast, tmp_path):
    page = sized
    sign_in(page, "alpha-user", PASSWORD)
    page.click("text=Import or export domains, mailboxes and aliases")
    page.wait_for_load_state()
    upload = tmp_path / "mailboxes.csv"
    upload.write_text("address,display_name,quota_mb,smtp_enabled\nanna@alpha.test,Anna,100,yes\n"
                      "info@alpha.test,Front desk,100,yes\n")
    page.select_option("select[name=kind]", "mailboxes")
    page.set_input_files("input[name=file]", str(upload))
    _submit(page, "button[name=preview]")
    rows = page.inner_text("#import-rows")
    assert "Preview: nothing was written" in page.inner_text("#import-result")
    assert "create" in rows and "Display name none → Front desk" in rows
    assert not Mailbox.objects.filter(local_part="anna").exists()
    _shot(page, request, "preview")

    _submit(page, "#import-result button[name=import]")
    assert "Imported: 1 created, 1 changed, 0 unchanged." in page.inner_text("main")
    with page.expect_download() as info:
        page.click("#download-passwords")
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert rows[0] == ["address", "password"] and rows[1][0] == "anna@alpha.test"
    _shot(page, request, "imported")
    page.goto("/import/")
    assert rows[1][1] not in page.content()

    with page.expect_download() as info:
        page.click("text=Export mailboxes (CSV)")
    exported = Path(info.value.path()).read_text()
    assert "anna@alpha.test,Anna,100,yes," in exported and "bravo" not in exported
