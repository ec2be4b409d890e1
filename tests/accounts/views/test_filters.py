"""The filter, automatic-reply and greylisting pages: the permission matrix (a mailbox's owner manages its own
filters and auto-reply), saving through the services, sievec's refusal shown next to the script."""

import html

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, AutoReply, Domain, SieveScript
from accounts.services.aliases import alias_create
from tests.support.permissions import MANAGE, assert_matrix, mailbox_user

pytestmark = pytest.mark.django_db

OWN = {**MANAGE, "mailbox_owner": 200}


def rules_post(rows: list[dict], **extra) -> dict:
    data = {"rule-TOTAL_FORMS": str(len(rows)), "rule-INITIAL_FORMS": "0", "rule-MIN_NUM_FORMS": "0",
            "rule-MAX_NUM_FORMS": "50", "mode": "rules", "script": "", **extra}
    for n, row in enumerate(rows):
        data.update({f"rule-{n}-{key}": value for key, value in row.items()})
    return data


def test_permission_matrix(client, cast):
    alias = alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["info@alpha.test"])
    assert_matrix(client, cast, reverse("mailbox_filters", args=[cast.a.mailbox.pk]), OWN)
    assert_matrix(client, cast, reverse("mailbox_auto_reply", args=[cast.a.mailbox.pk]), OWN)
    assert_matrix(client, cast, reverse("alias_auto_reply", args=[alias.pk]), MANAGE)
    assert_matrix(client, cast, reverse("domain_greylisting", args=[cast.a.domain.pk]),
                  {who: 302 if status == 200 else status for who, status in MANAGE.items()}, method="post")
    # Only the allowed ones changed anything.
    assert set(AuditEntry.objects.filter(action="domain.greylisting").values_list("actor", flat=True)) <= {
        cast.a.user.pk, cast.support.pk, cast.reseller_a_admin.pk}


def test_rules_from_the_form_are_saved_and_blank_rows_ignored(client, cast):
    client.force_login(mailbox_user(cast.a.mailbox))
    url = reverse("mailbox_filters", args=[cast.a.mailbox.pk])
    response = client.post(url, rules_post([
        {"field": "subject", "contains": "invoice", "action": "fileinto", "target": "Billing"},
        {"field": "from", "contains": "", "action": "fileinto", "target": ""}]))
    assert response.status_code == 302 and response["Location"] == url
    script = SieveScript.objects.get(mailbox=cast.a.mailbox)
    assert script.rules == [{"field": "subject", "contains": "invoice", "action": "fileinto", "target": "Billing"}]
    page = client.get(url).content.decode()
    assert "are saved" in page and 'value="invoice"' in page and "fileinto :create &quot;Billing&quot;" in page


def test_an_invalid_script_shows_sievecs_message_and_keeps_the_old_one(client, cast):
    client.force_login(cast.a.user)
    url = reverse("mailbox_filters", args=[cast.a.mailbox.pk])
    response = client.post(url, rules_post([], mode="raw", script='require ["fileinto"];\nfileinto "A"\nstop;\n'))
    assert response.status_code == 200
    page = response.content.decode()
    assert "The filters were not saved" in page and "line 2: missing semicolon ';' after fileinto command." in html.unescape(page)
    assert not SieveScript.objects.exists()


def test_auto_reply_page_saves_for_an_alias(client, cast):
    alias = alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["info@alpha.test"])
    client.force_login(cast.a.user)
    url = reverse("alias_auto_reply", args=[alias.pk])
    response = client.post(url, {"enabled": "on", "subject": "Away", "body": "Back soon.", "starts_on": "2026-12-01",
                                 "ends_on": "2026-12-24", "interval_days": "3"})
    assert response.status_code == 302
    reply = AutoReply.objects.get(alias=alias)
    assert (reply.address, reply.enabled, reply.interval_days) == ("team@alpha.test", True, 3)
    response = client.post(url, {"subject": "Away", "body": "Back soon.", "ends_on": "2026-11-01",
                                 "starts_on": "2026-12-01", "interval_days": "3"})
    assert "The last day cannot be before the first." in response.content.decode()


def test_greylisting_is_off_until_turned_on_and_explains_its_cost(client, cast):
    client.force_login(cast.a.user)
    page = client.get(reverse("domain_detail", args=[cast.a.domain.pk])).content.decode()
    assert "a sender that never retries is lost" in page and "Off by default" in page
    client.post(reverse("domain_greylisting", args=[cast.a.domain.pk]), {"greylisting": "on"})
    assert Domain.objects.get(pk=cast.a.domain.pk).greylisting
    client.post(reverse("domain_greylisting", args=[cast.a.domain.pk]), {})
    assert not Domain.objects.get(pk=cast.a.domain.pk).greylisting
    assert AuditEntry.objects.filter(action="domain.greylisting").count() == 2


def test_the_saved_message_says_when_replies_go_out(client, cast):
    from datetime import timedelta

    from django.utils import timezone

    client.force_login(cast.a.user)
    url = reverse("mailbox_auto_reply", args=[cast.a.mailbox.pk])
    today = timezone.localdate()
    base = {"subject": "Away", "body": "Back soon.", "interval_days": "7"}
    said = {}
    for name, extra in {"now": {"enabled": "on"}, "off": {},
                        "later": {"enabled": "on", "starts_on": f"{today + timedelta(days=3):%Y-%m-%d}"},
                        "over": {"enabled": "on", "ends_on": f"{today - timedelta(days=1):%Y-%m-%d}"}}.items():
        page = client.post(url, {**base, **extra}, follow=True).content.decode()
        said[name] = page.split("is saved: ", 1)[1].split("</", 1)[0]
    assert said == {"now": "on.", "off": "off.", "later": f"on from {today + timedelta(days=3):%Y-%m-%d}.",
                    "over": "on, but its last day has passed, so nothing will be sent."}


def test_the_mailbox_page_says_which_are_on(client, cast):
    from accounts.services.filters import auto_reply_save, sieve_script_save

    client.force_login(cast.a.user)
    url = reverse("mailbox_edit", args=[cast.a.mailbox.pk])
    page = client.get(url).content.decode()
    assert ">Filters</a>" in page and ">Automatic reply</a>" in page
    sieve_script_save(actor=None, mailbox=cast.a.mailbox, mode="rules", rules=[
        {"field": "from", "contains": "x", "action": "discard"}])
    auto_reply_save(actor=None, owner=cast.a.mailbox, enabled=True, subject="Away", body="Back soon.")
    page = client.get(url).content.decode()
    assert ">Filters (on)</a>" in page and ">Automatic reply (on)</a>" in page
