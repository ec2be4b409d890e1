"""A customer sets a domain to hold spam instead of refusing it, in a real browser; a message rspamd (real, its GTUBE
pattern) would refuse reaches the MX and is held; the customer sees it in the quarantine with its score and
symbols, reads the checks on its detail page and releases it into the normal delivery."""

import pytest

from accounts.models import User
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.tenants import customer_create, user_create
from relay.models import QueuedMessage
from tests.browser.conftest import sign_in
from tests.support.inbound import mta_client
from tests.support.rspamd import GTUBE
from tests.support.smtp import send

PASSWORD = "shop owner secret"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_customer_holds_spam_in_quarantine_and_releases_it(page, shot, rspamd, mx_factory, dns_server):
    dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all"])
    customer = customer_create(actor=None, name="Shop")
    user_create(actor=None, username="shop", password=PASSWORD, role=User.Role.CUSTOMER, customer=customer)
    domain = domain_create(actor=None, customer=customer, name="shop.test", verified=True)
    mailbox_create(actor=None, domain=domain, local_part="orders", password="mailbox secret 2026", quota_mb=100)
    mx = mx_factory()

    sign_in(page, "shop", PASSWORD)
    page.click("nav >> text=Spam filter")
    page.check(f"#domain-{domain.pk} input[name=d{domain.pk}-quarantine]")
    page.click(f"#domain-{domain.pk} button[type=submit]")
    page.wait_for_selector("text=The spam settings of shop.test are saved.")
    shot("spam-settings")

    data = (f"From: offers@sender.example\r\nTo: orders@shop.test\r\nSubject: Cheap watches\r\n"
            f"Message-ID: <w1@sender.example>\r\n\r\n{GTUBE}\r\n").encode()
    with mta_client(mx.port) as client:
        code, _ = send(client, sender="offers@sender.example", recipients=["orders@shop.test"], data=data)[-1]
    assert code == 250  # held, not refused
    message = QueuedMessage.objects.get()
    assert message.state == QueuedMessage.State.QUARANTINED

    page.click("nav >> text=Quarantine")
    row = page.locator("table.quarantine tbody tr", has_text="Cheap watches")
    assert "offers@sender.example" in row.inner_text() and "15.00" in row.inner_text()
    assert "GTUBE" in row.inner_text()
    shot("quarantine")
    row.locator("a").first.click()
    assert "spf=pass" in page.inner_text("#checks") and "reject, score 15.00" in page.inner_text("#checks")
    page.go_back()
    row = page.locator("table.quarantine tbody tr", has_text="Cheap watches")
    row.locator("button", has_text="Release").click()
    page.wait_for_selector(f"text=Message {message.queue_id} is released")
    assert "Nothing is held." in page.inner_text("table.quarantine")
    shot("released")
    message.refresh_from_db()
    assert message.state != QueuedMessage.State.QUARANTINED and "Released from quarantine" in message.state_reason
    assert b"X-Spam-Flag" not in bytes(message.content)
