"""The whole customer flow in a real browser, with real DNS on loopback for the ownership proof."""

import pytest

from accounts import dnscheck
from accounts.models import Domain, Mailbox, SmtpCredential, User
from accounts.services.tenants import customer_create, user_create
from tests.browser.conftest import sign_in

PASSWORD = "shop owner secret"
MAILBOX_PASSWORD = "mailbox secret 2026"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_customer_adds_domain_verifies_creates_mailbox_smtp_and_credential(page, shot, dns_server, settings):
    settings.RELAY_HOSTNAME = "smtp.provider.test"
    customer = customer_create(actor=None, name="Shop", max_domains=3, max_mailboxes=5, max_storage_mb=2048)
    user_create(actor=None, username="shop", password=PASSWORD, role=User.Role.CUSTOMER, customer=customer)

    sign_in(page, "shop", PASSWORD)
    assert "0 of 3" in page.inner_text("main")
    shot("dashboard-empty")

    # Add a domain (in Unicode: stored as its A-label).
    page.click("text=Add a domain")
    page.fill("input[name=name]", "Bücher-Shop.test")
    page.click("main button[type=submit]")
    page.wait_for_selector("#verification-value")
    domain = Domain.objects.get(name="xn--bcher-shop-9db.test")
    name, value = dnscheck.verification_record(domain)
    assert page.inner_text("#verification-value") == value
    assert "bücher-shop.test was added" in page.inner_text("main")
    shot("domain-pending")

    # Publish the proof on a real DNS server, then "Check now" (an htmx swap of the DNS panel).
    dns_server(txt=[f"{name},{value}"])
    page.click("#check-now")
    page.wait_for_selector("#dns .msg:has-text('is verified')")
    assert "is verified" in page.inner_text("#dns") and page.inner_text("#domain-status") == "verified"
    assert "mx" in page.inner_text("#record-mx").lower() and "missing" in page.inner_text("#record-mx")
    domain.refresh_from_db()
    assert domain.is_verified
    shot("domain-verified")

    # Create a mailbox: first a password the rules refuse, then a good one.
    page.click("text=Create a mailbox")
    page.fill("input[name=local_part]", "orders")
    page.fill("input[name=password]", "short")
    page.fill("input[name=password2]", "short")
    page.fill("input[name=quota_mb]", "500")
    page.click("main button[type=submit]")
    assert "Use at least 10 characters." in page.inner_text("main form")
    shot("mailbox-error")
    page.fill("input[name=password]", MAILBOX_PASSWORD)
    page.fill("input[name=password2]", MAILBOX_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#smtp-access")
    mailbox = Mailbox.objects.get(local_part="orders", domain=domain)
    assert not mailbox.smtp_enabled and "Mailbox orders@bücher-shop.test was created." in page.inner_text("main")

    # Switch SMTP access on.
    page.click("#smtp-toggle")
    page.wait_for_selector("text=Switch SMTP access off")
    mailbox.refresh_from_db()
    assert mailbox.smtp_enabled
    shot("mailbox-smtp-on")

    # Create a credential for the mailbox's address: the secret is shown once.
    page.click("text=Create an SMTP credential")
    page.fill("input[name=description]", "web shop")
    page.fill("textarea[name=allowed_networks]", "192.0.2.0/24")
    page.click("main button[type=submit]")
    page.wait_for_selector("#credential-secret")
    secret = page.inner_text("#credential-secret").strip()
    page.click("button[data-copy='#credential-secret']")
    page.wait_for_selector("button[data-copy='#credential-secret']:text('Copied')")
    credential = SmtpCredential.objects.get(description="web shop")
    assert credential.mailbox == mailbox and page.inner_text("#credential-username") == credential.username
    assert len(secret) >= 24 and secret not in credential.secret_hash
    shot("credential-secret")

    page.goto("/credentials/")
    assert credential.username in page.content() and secret not in page.content()
    shot("credentials")

    # The client settings page for the credential, then for the mailbox.
    page.click(f"text={credential.username}")
    assert page.inner_text("#smtp-host") == "smtp.provider.test"
    assert page.inner_text("#smtp-username") == credential.username and secret not in page.content()
    shot("credential-settings")
    page.goto(f"/mailboxes/{mailbox.pk}/settings/")
    assert page.inner_text("#smtp-username") == "orders@xn--bcher-shop-9db.test"
    shot("mailbox-settings")

    # Usage on the dashboard.
    page.goto("/")
    main = page.inner_text("main")
    assert "1 of 3" in main and "500 MB of 2048 MB" in main
    shot("dashboard")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_panel_is_usable_at_phone_width(page, shot, cast):
    from tests.support.factories import PASSWORD as CAST_PASSWORD

    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "alpha-user", CAST_PASSWORD)
    pages = {"dashboard": "/", "domain": f"/domains/{cast.a.domain.pk}/", "mailbox": f"/mailboxes/{cast.a.mailbox.pk}/",
             "settings": f"/mailboxes/{cast.a.mailbox.pk}/settings/", "credentials": "/credentials/"}
    for name, path in pages.items():
        page.goto(path)
        # Nothing wider than the screen: wide tables scroll inside their own box, the page never sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        shot(f"phone-{name}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_mailbox_owner_signs_in_with_the_address_and_manages_own_app_passwords(page, shot, cast):
    from accounts import hashing
    from tests.support.factories import PASSWORD as CAST_PASSWORD

    sign_in(page, "info@alpha.test", CAST_PASSWORD)
    assert page.inner_text("h1") == "info@alpha.test"
    assert "Domains" not in page.inner_text("header nav")
    shot("owner-home")

    page.click("text=Create an app password")
    assert page.locator("select[name=scope] option").all_inner_texts() == ["info@alpha.test"]
    page.fill("input[name=description]", "phone")
    page.click("main button[type=submit]")
    secret = page.inner_text("#credential-secret").strip()
    assert SmtpCredential.objects.get(description="phone").mailbox == cast.a.mailbox
    page.goto("/")
    assert "phone" in page.inner_text("main") and secret not in page.content()

    page.click("text=Change my password")
    page.fill("input[name=current_password]", CAST_PASSWORD)
    page.fill("input[name=password]", "owner's new secret")
    page.fill("input[name=password2]", "owner's new secret")
    page.click("main button[type=submit]")
    assert "Your password was changed" in page.inner_text("main")
    cast.a.mailbox.refresh_from_db()
    assert hashing.check_hash("owner's new secret", cast.a.mailbox.password_hash)
    shot("owner-password-changed")
