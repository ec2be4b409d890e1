"""A customer makes a filter rule and an automatic reply in a real browser: a mistake is shown next to what
caused it (the form's rule, sievec's message for a hand-written script), and what is saved is what Dovecot and
the workers read."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AutoReply, SieveScript
from tests.browser.conftest import sign_in
from tests.support.factories import PASSWORD


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_customer_sets_filters_and_an_automatic_reply(page, shot, cast):
    mailbox = cast.a.mailbox
    sign_in(page, cast.a.user.username, PASSWORD)
    page.goto(f"/mailboxes/{mailbox.pk}/")
    page.click("main >> text=Filters")

    # A rule without its folder is refused, with the rule named.
    page.select_option("select[name=rule-0-field]", "subject")
    page.fill("input[name=rule-0-contains]", "invoice")
    page.select_option("select[name=rule-0-action]", "fileinto")
    page.click("main button[type=submit]")
    assert "Rule 1: give the folder to move the message to." in page.inner_text("main form")
    shot("rule-error")
    page.fill("input[name=rule-0-target]", "Billing")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=The filters of info@alpha.test are saved")
    assert 'fileinto :create "Billing";' in page.input_value("textarea[name=script]")
    assert SieveScript.objects.get(mailbox=mailbox).rules[0]["target"] == "Billing"

    # A hand-written script that does not compile: sievec's line, and the saved filters unchanged.
    page.check("input[name=mode][value=raw]")
    page.fill("textarea[name=script]", 'require ["fileinto"];\nfileinto "Archive"\n')
    page.click("main button[type=submit]")
    assert ("line 3: expected end of command ';' or the beginning of a compound block '{', but found end of file."
            in page.inner_text("main form"))
    shot("script-error")
    assert SieveScript.objects.get(mailbox=mailbox).version == 1

    page.goto(f"/mailboxes/{mailbox.pk}/")
    page.click("main >> text=Automatic reply")
    page.check("input[name=enabled]")
    page.fill("input[name=subject]", "Out of office")
    page.fill("textarea[name=body]", "Back on Monday.")
    start, end = timezone.localdate() + timedelta(days=14), timezone.localdate() + timedelta(days=29)
    page.fill("input[name=starts_on]", f"{start:%Y-%m-%d}")
    page.fill("input[name=ends_on]", f"{start - timedelta(days=1):%Y-%m-%d}")
    page.click("main button[type=submit]")
    assert "The last day cannot be before the first." in page.inner_text("main form")
    page.fill("input[name=ends_on]", f"{end:%Y-%m-%d}")
    page.click("main button[type=submit]")
    page.wait_for_selector(f"text=The automatic reply of info@alpha.test is saved: on from {start:%Y-%m-%d}.")
    shot("auto-reply")
    reply = AutoReply.objects.get(mailbox=mailbox)
    assert (reply.subject, reply.starts_on, reply.ends_on) == ("Out of office", start, end)
