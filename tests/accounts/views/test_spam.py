"""The spam filter page: who reaches it, thresholds within support's range, a domain's quarantine, the allow and
block lists; every change audited, bad input refused with nothing written."""

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, SenderRule, SpamPolicy
from tests.support.permissions import MANAGE, assert_matrix, viewer
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db


def test_spam_pages_permission_matrix(client, cast):
    assert_matrix(client, cast, reverse("spam_settings", args=[cast.a.customer.pk]), MANAGE)
    redirected = {who: 302 if status == 200 else status for who, status in MANAGE.items()}
    assert_matrix(client, cast, reverse("spam_domain", args=[cast.a.domain.pk]), redirected, method="post")
    url = reverse("sender_rule_add", args=[cast.a.customer.pk])
    for who, status in redirected.items():
        client.force_login(viewer(cast, who))
        assert client.post(url, {"kind": "block", "value": f"{who.replace('_', '-')}.example"}).status_code == status
    assert set(SenderRule.objects.values_list("value", flat=True)) == {
        "owner.example", "support.example", "reseller.example"}
    client.logout()
    assert client.post(url, {"kind": "block", "value": "x.example"})["Location"].startswith("/login/")
    # The range is support's alone: the customer and its reseller are refused.
    assert_matrix(client, cast, reverse("spam_bounds", args=[cast.a.customer.pk]),
                  {**redirected, "owner": 403, "reseller": 403, "mailbox_owner": 403, "direct": 403,
                   "other_customer": 403, "other_reseller": 403, "sibling": 403, "support": 302}, method="post",
                  data={"min_score": "3", "max_score": "30"})
    assert not AuditEntry.objects.filter(action__startswith="spam.").exclude(
        actor__in=[cast.a.user, cast.support, cast.reseller_a_admin]).exists()


def test_customer_sets_scores_within_the_range(client, cast):
    client.force_login(cast.a.user)
    url = reverse("spam_settings", args=[cast.a.customer.pk])
    response = client.post(url, {"mark_score": "4", "reject_score": "12"}, REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 302
    policy = SpamPolicy.objects.get(customer=cast.a.customer, domain=None)
    assert (policy.mark_score, policy.reject_score) == (4.0, 12.0)
    entry = AuditEntry.objects.get(action="spam.thresholds")
    assert entry.after == {"mark_score": 4.0, "reject_score": 12.0} and entry.client_ip == "192.0.2.7"
    assert "The spam scores are saved" in client.get(url).content.decode()


@pytest.mark.parametrize("data, error", [
    ({"mark_score": "1", "reject_score": "12"}, "Choose a score from 2 to 50"),
    ({"mark_score": "8", "reject_score": "6"}, "must be higher than the score to mark"),
    ({"mark_score": "nan", "reject_score": ""}, "Enter a number"),
    ({"mark_score": "abc"}, "Enter a number"),
])
def test_bad_scores_are_refused_and_nothing_is_saved(client, cast, data, error):
    client.force_login(cast.a.user)
    response = client.post(reverse("spam_settings", args=[cast.a.customer.pk]), data)
    assert response.status_code == 400 and error in response.content.decode()
    assert not SpamPolicy.objects.exists() and not AuditEntry.objects.filter(action__startswith="spam.").exists()


def test_support_narrows_the_range_and_the_customer_is_held_to_it(client, cast):
    sign_in_verified(client, cast.support)
    response = client.post(reverse("spam_bounds", args=[cast.a.customer.pk]), {"min_score": "5", "max_score": "20"})
    assert response.status_code == 302 and response["Location"] == reverse("spam_settings", args=[cast.a.customer.pk])
    assert AuditEntry.objects.get(action="spam.bounds").after == {"min_score": 5.0, "max_score": 20.0}
    client.force_login(cast.a.user)
    page = client.get(reverse("spam_settings", args=[cast.a.customer.pk])).content.decode()
    assert "Scores you may choose: 5 to 20" in page and "Range the customer may choose" not in page
    response = client.post(reverse("spam_settings", args=[cast.a.customer.pk]), {"mark_score": "4"})
    assert response.status_code == 400 and "Choose a score from 5 to 20" in response.content.decode()


def test_support_range_must_be_a_range(client, cast):
    sign_in_verified(client, cast.support)
    response = client.post(reverse("spam_bounds", args=[cast.a.customer.pk]), {"min_score": "20", "max_score": "5"})
    assert response.status_code == 400 and "must be above the lowest" in response.content.decode()
    assert not SpamPolicy.objects.exists()


def test_domain_holds_instead_of_refusing(client, cast):
    client.force_login(cast.a.user)
    prefix = f"d{cast.a.domain.pk}"
    response = client.post(reverse("spam_domain", args=[cast.a.domain.pk]),
                           {f"{prefix}-quarantine": "on", f"{prefix}-reject_score": "20"})
    assert response.status_code == 302
    policy = SpamPolicy.objects.get(domain=cast.a.domain)
    assert policy.quarantine and policy.reject_score == 20.0 and policy.customer_id == cast.a.customer.pk
    assert AuditEntry.objects.get(action="spam.thresholds").object_type == "domain"


@pytest.mark.parametrize("value, stored", [("Boss@Corp.Example", "boss@corp.example"), ("@Spam.Example", "spam.example"),
                                           ("bücher.example", "xn--bcher-kva.example")])
def test_listed_senders_are_normalized(client, cast, value, stored):
    client.force_login(cast.a.user)
    response = client.post(reverse("sender_rule_add", args=[cast.a.customer.pk]), {"kind": "allow", "value": value})
    assert response.status_code == 302
    assert SenderRule.objects.get().value == stored


@pytest.mark.parametrize("value", ["not an address", "a@", "exa mple.com", ""])
def test_a_bad_sender_is_refused(client, cast, value):
    client.force_login(cast.a.user)
    response = client.post(reverse("sender_rule_add", args=[cast.a.customer.pk]), {"kind": "block", "value": value})
    assert response.status_code == 400 and not SenderRule.objects.exists()


def test_the_same_sender_is_listed_once_and_deleted_by_its_owner_only(client, cast):
    client.force_login(cast.a.user)
    url = reverse("sender_rule_add", args=[cast.a.customer.pk])
    assert client.post(url, {"kind": "allow", "value": "corp.example"}).status_code == 302
    response = client.post(url, {"kind": "block", "value": "corp.example"})
    assert response.status_code == 400 and "already on a list" in response.content.decode()
    rule = SenderRule.objects.get()
    client.force_login(cast.b.user)
    assert client.post(reverse("sender_rule_delete", args=[cast.a.customer.pk, rule.pk])).status_code == 404
    client.force_login(cast.a.user)
    assert client.post(reverse("sender_rule_delete", args=[cast.a.customer.pk, rule.pk])).status_code == 302
    assert not SenderRule.objects.exists()
    assert AuditEntry.objects.filter(action="spam.sender_rule_delete").count() == 1


def test_support_and_the_reseller_reach_the_page_from_their_customer_pages(client, cast):
    target = reverse("spam_settings", args=[cast.a.customer.pk])
    sign_in_verified(client, cast.support)
    assert target in client.get(reverse("support:customer", args=[cast.a.customer.pk])).content.decode()
    client.force_login(cast.reseller_a_admin)
    assert target in client.get(reverse("reseller:customer", args=[cast.a.customer.pk])).content.decode()
    assert target in client.get(reverse("customer_dashboard", args=[cast.a.customer.pk])).content.decode()


@pytest.mark.parametrize("url, says_off", [("", True), ("http://127.0.0.1:11333", False)])
def test_the_page_says_when_spam_checking_is_off(client, cast, settings, url, says_off):
    """Nothing on the page may promise scoring or sender lists the MX does not apply (RSPAMD_URL empty: off)."""
    settings.RSPAMD_URL = url
    client.force_login(cast.a.user)
    page = client.get(reverse("spam_settings", args=[cast.a.customer.pk])).content.decode()
    assert ('id="spam-off"' in page) is says_off
    assert ("Every message to your mailboxes is scored" in page) is not says_off
