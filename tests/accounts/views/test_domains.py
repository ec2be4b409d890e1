import html

import pytest
from django.urls import reverse

from accounts import dnscheck
from accounts.models import AuditEntry, Domain
from accounts.services.domains import domain_create
from tests.support.permissions import DENIED, MANAGE, assert_matrix, assert_shows_only, mailbox_user

pytestmark = pytest.mark.django_db


def _pending(cast, name="new-alpha.test"):

    return domain_create(actor=None, customer=cast.a.customer, name=name)


def test_domain_pages_permission_matrix(client, cast):
    domain = cast.a.domain
    assert_matrix(client, cast, reverse("domain_detail", args=[domain.pk]), MANAGE)
    assert_matrix(client, cast, reverse("domain_delete", args=[domain.pk]), MANAGE)
    everyone = {who: 200 for who in MANAGE}
    assert_matrix(client, cast, reverse("domain_list"), everyone)


def test_domain_add_needs_a_customer_the_user_looks_after(client, cast):
    url = reverse("domain_add")
    assert_matrix(client, cast, url, {"owner": 200, "support": 404, "reseller": 404, "mailbox_owner": 404})
    with_customer = f"{url}?customer={cast.a.customer.pk}"
    assert_matrix(client, cast, with_customer, {"owner": 200, "support": 200, "reseller": 200,
                                                 "other_reseller": 404, "sibling": 200, "mailbox_owner": 404})


def test_domain_list_shows_no_foreign_domains(client, cast):
    url = reverse("domain_list")
    assert_shows_only(client, cast.a.user, url, ("alpha.test",), ("bravo.test", "direct.test"))
    assert_shows_only(client, cast.reseller_b_admin, url, ("bravo.test",), ("alpha.test", "direct.test"))
    assert_shows_only(client, cast.support, url, ("alpha.test", "bravo.test", "direct.test"), ())


def test_add_domain_normalises_to_idna_and_audits_with_client_address(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("domain_add"), {"name": " Bücher.Alpha-Shop.TEST "}, REMOTE_ADDR="198.51.100.7")
    domain = Domain.objects.get(name="xn--bcher-kva.alpha-shop.test")
    assert response.status_code == 302 and response["Location"] == reverse("domain_detail", args=[domain.pk])
    assert domain.customer == cast.a.customer and not domain.is_verified
    entry = AuditEntry.objects.get(action="domain.create", object_id=str(domain.pk))
    assert entry.actor == cast.a.user and entry.client_ip == "198.51.100.7"
    page = client.get(response["Location"]).content.decode()
    assert page.count("bücher.alpha-shop.test was added") == 1


@pytest.mark.parametrize("name, error", [
    ("", "This field is required"),
    ("localhost", "needs at least two labels"),
    ("bad_name.test", "is not a valid domain name"),
    ("-dash.test", "is not a valid domain name"),
])
def test_add_domain_rejects_invalid_names_next_to_the_field(client, cast, name, error):
    client.force_login(cast.a.user)
    before = Domain.objects.count()
    response = client.post(reverse("domain_add"), {"name": name})
    assert response.status_code == 200
    assert error in response.context["form"].errors["name"][0]
    assert "was not added" in response.content.decode()
    assert Domain.objects.count() == before


def test_add_domain_refuses_a_domain_of_another_customer(client, cast):
    client.force_login(cast.b.user)
    response = client.post(reverse("domain_add"), {"name": "ALPHA.test"})
    assert "already registered" in response.context["form"].errors["name"][0]
    assert Domain.objects.get(name="alpha.test").customer == cast.a.customer


def test_add_domain_refuses_past_the_plan_limit(client, cast):
    cast.a.customer.max_domains = 1
    cast.a.customer.save()
    client.force_login(cast.a.user)
    response = client.post(reverse("domain_add"), {"name": "second-alpha.test"})
    assert "Your plan allows 1 domains" in response.context["form"].errors["name"][0]
    assert not Domain.objects.filter(name="second-alpha.test").exists()


def test_reseller_adds_a_domain_for_its_customer_but_not_for_another_resellers(client, cast):
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("domain_add"), {"name": "for-alpha.test", "customer": cast.a.customer.pk})
    assert response.status_code == 302
    assert Domain.objects.get(name="for-alpha.test").customer == cast.a.customer
    response = client.post(reverse("domain_add"), {"name": "for-bravo.test", "customer": cast.b.customer.pk})
    assert response.status_code == 404 and not Domain.objects.filter(name="for-bravo.test").exists()


def test_pending_domain_page_shows_the_verification_record(client, cast):
    domain = _pending(cast)
    name, value = dnscheck.verification_record(domain)
    client.force_login(cast.a.user)
    body = client.get(reverse("domain_detail", args=[domain.pk])).content.decode()
    assert name in body and value in body and "Check now" in body


def _publish_proof(dns_server, domain) -> None:
    name, value = dnscheck.verification_record(domain)
    dns_server(txt=[f"{name},{value}"])


def test_check_now_verifies_through_real_dns_and_shows_the_records(client, cast, dns_server):
    domain = _pending(cast)
    _publish_proof(dns_server, domain)
    client.force_login(cast.a.user)
    response = client.post(reverse("domain_check", args=[domain.pk]), REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302
    domain.refresh_from_db()
    assert domain.is_verified and domain.status == Domain.DomainStatus.ACTIVE
    assert AuditEntry.objects.filter(action="domain.verify", object_id=str(domain.pk)).exists()
    body = client.get(response["Location"]).content.decode()
    assert "is verified" in body
    for record in dnscheck.expected_records(domain):
        assert record["value"] in body
    dkim = next(r for r in dnscheck.expected_records(domain) if r["kind"] == "dkim")
    assert f'{dkim["name"]}. IN TXT "{dkim["strings"][0]}"' in html.unescape(body)


def test_check_now_without_the_record_leaves_the_domain_pending(client, cast, dns_server):
    domain = _pending(cast)
    dns_server(txt=[f"{domain.name},something else"])
    client.force_login(cast.a.user)
    response = client.post(reverse("domain_check", args=[domain.pk]), follow=True)
    domain.refresh_from_db()
    assert not domain.is_verified
    assert "was not found yet" in response.content.decode()


def test_check_now_answers_htmx_with_the_dns_partial(client, cast, dns_server):
    domain = _pending(cast)
    _publish_proof(dns_server, domain)
    client.force_login(cast.a.user)
    response = client.post(reverse("domain_check", args=[domain.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<section id="dns"')
    assert '<span id="domain-status" hx-swap-oob="true"><span class="badge active">verified' in body
    assert "<html" not in body and "is verified" in body and "Records to publish" in body


def test_check_now_is_refused_to_other_tenants(client, cast):
    url = reverse("domain_check", args=[cast.a.domain.pk])
    assert_matrix(client, cast, url, DENIED, method="post")
    assert client.get(url).status_code == 302  # anonymous GET: to the login page first


def test_verified_domain_shows_each_records_status_and_what_was_found(client, cast):
    domain = cast.a.domain
    records = dnscheck.expected_records(domain)
    domain.dns_status = {
        "mx": {"status": "found", "expected": records[0]["value"], "found": [records[0]["value"]]},
        "spf": {"status": "wrong", "expected": "x", "found": ["v=spf1 include:elsewhere.example -all"]},
        "dmarc": {"status": "missing", "expected": "x", "found": []},
    }
    domain.save()
    client.force_login(cast.a.user)
    response = client.get(reverse("domain_detail", args=[domain.pk]))
    rows = {r["kind"]: r for r in response.context["records"]}
    assert rows["mx"]["status"] == "found" and rows["spf"]["status"] == "wrong"
    assert rows["dmarc"]["status"] == "missing" and rows["dkim"]["status"] == "unchecked"
    assert "v=spf1 include:elsewhere.example -all" in response.content.decode()


def test_delete_domain_asks_then_deletes_with_audit(client, cast):
    domain = _pending(cast)
    client.force_login(cast.a.user)
    assert "cannot be undone" in client.get(reverse("domain_delete", args=[domain.pk])).content.decode()
    response = client.post(reverse("domain_delete", args=[domain.pk]), follow=True)
    assert not Domain.objects.filter(pk=domain.pk).exists()
    assert "new-alpha.test and its mailboxes were deleted" in response.content.decode()
    assert AuditEntry.objects.filter(action="domain.delete", object_id=str(domain.pk)).exists()


def test_delete_domain_of_another_tenant_is_404_and_keeps_it(client, cast):
    url = reverse("domain_delete", args=[cast.a.domain.pk])
    assert_matrix(client, cast, url, DENIED, method="post")
    assert Domain.objects.filter(pk=cast.a.domain.pk).exists()


def test_mailbox_owner_sees_no_domains(client, cast):
    client.force_login(mailbox_user(cast.a.mailbox))
    body = client.get(reverse("domain_list")).content.decode()
    assert "alpha.test</a>" not in body


def test_a_customer_user_cannot_pick_another_customer_by_parameter(client, cast):
    client.force_login(cast.b.user)
    client.post(f"{reverse('domain_add')}?customer={cast.a.customer.pk}", {"name": "sneaky.test",
                                                                          "customer": cast.a.customer.pk})
    assert Domain.objects.get(name="sneaky.test").customer == cast.b.customer


def test_domain_list_is_paged_and_searchable_in_unicode(client, cast, settings):
    from accounts.models import Customer

    Customer.objects.filter(pk=cast.a.customer.pk).update(max_domains=100)
    for i in range(55):
        Domain.objects.create(name=f"shop{i:02}.alpha.test", customer=cast.a.customer)
    Domain.objects.create(name="xn--bcher-kva.test", customer=cast.a.customer)
    client.force_login(cast.a.user)
    first = client.get(reverse("domain_list"))
    assert len(first.context["page"]) == 50 and "Page 1 of 2 (57 in all)" in first.content.decode()
    second = client.get(reverse("domain_list"), {"page": 2})
    assert len(second.context["page"]) == 7
    found = client.get(reverse("domain_list"), {"q": "Bücher"})
    assert [d.name for d in found.context["page"]] == ["xn--bcher-kva.test"]
    client.force_login(cast.support)
    scoped = client.get(reverse("domain_list"), {"customer": cast.b.customer.pk, "q": "test"})
    assert [d.name for d in scoped.context["page"]] == ["bravo.test"]


def test_suspended_domain_says_so_with_the_reason(client, cast):
    Domain.objects.filter(pk=cast.a.domain.pk).update(status=Domain.DomainStatus.SUSPENDED, status_reason="spam wave")
    client.force_login(cast.a.user)
    body = client.get(reverse("domain_detail", args=[cast.a.domain.pk])).content.decode()
    assert "This domain is suspended: spam wave" in body


def test_check_now_says_when_the_dns_cannot_be_asked(client, cast, settings):
    from tests.peers import free_port

    settings.DNS_NAMESERVERS, settings.DNS_PORT, settings.DNS_TIMEOUT = ["127.0.0.1"], free_port(), 0.3
    domain = _pending(cast)
    client.force_login(cast.a.user)
    body = client.post(reverse("domain_check", args=[domain.pk]), follow=True).content.decode()
    domain.refresh_from_db()
    assert not domain.is_verified and "The DNS could not be asked" in body
    assert '<span class="badge error">error</span>' in body


def test_domain_list_shows_each_rows_mailbox_count_on_every_page(client, cast):
    from accounts.models import Customer, Mailbox

    Customer.objects.filter(pk=cast.a.customer.pk).update(max_domains=100, max_mailboxes=100)
    shops = [Domain.objects.create(name=f"shop{i:02}.alpha.test", customer=cast.a.customer) for i in range(52)]
    for n, domain in ((3, shops[0]), (2, shops[51])):
        for k in range(n):
            Mailbox.objects.create(domain=domain, local_part=f"box{k}", password_hash="x", quota_mb=1)
    expected = {d.name: d.mailboxes.count() for d in Domain.objects.filter(customer=cast.a.customer)}
    for user in (cast.a.user, cast.support):
        client.force_login(user)
        params = {"customer": cast.a.customer.pk} if user == cast.support else {}
        rows = [*client.get(reverse("domain_list"), params).context["page"],
                *client.get(reverse("domain_list"), {**params, "page": 2}).context["page"]]
        assert {d.name: d.mailbox_count for d in rows} == expected
        assert expected["shop00.alpha.test"] == 3 and expected["shop51.alpha.test"] == 2


def test_domain_page_sets_the_dmarc_reject_policy_audited(client, cast):
    url = reverse("domain_dmarc_reject_policy", args=[cast.a.domain.pk])
    assert_matrix(client, cast, url, {who: 302 if status == 200 else status for who, status in MANAGE.items()},
                  method="post", data={"dmarc_reject_policy": "mark"})
    # Nothing of another tenant changed by the refused POSTs.
    assert set(Domain.objects.exclude(pk=cast.a.domain.pk).values_list("dmarc_reject_policy", flat=True)) == {"reject"}
    Domain.objects.filter(pk=cast.a.domain.pk).update(dmarc_reject_policy="reject")
    AuditEntry.objects.filter(action="domain.dmarc_reject_policy").delete()

    client.force_login(cast.a.user)
    page = client.get(reverse("domain_detail", args=[cast.a.domain.pk])).content.decode()
    assert 'id="dmarc-form"' in page and "Deliver it, marked as spam" in page
    response = client.post(url, {"dmarc_reject_policy": "mark"}, follow=True)
    assert "The DMARC setting of alpha.test is saved." in response.content.decode()
    cast.a.domain.refresh_from_db()
    assert cast.a.domain.dmarc_reject_policy == "mark"
    entry = AuditEntry.objects.get(action="domain.dmarc_reject_policy")
    assert (entry.actor, entry.before, entry.after) == (cast.a.user, {"dmarc_reject_policy": "reject"},
                                                         {"dmarc_reject_policy": "mark"})
    response = client.post(url, {"dmarc_reject_policy": "accept"}, follow=True)
    assert "Select a valid choice" in response.content.decode()
    cast.a.domain.refresh_from_db()
    assert cast.a.domain.dmarc_reject_policy == "mark"
