"""The API's domain detail lists the same records as the domain page: the client-setup ones marked optional, each
with its short host and zone-file line, and whether mail from the domain is DKIM-signed."""

import pytest

from accounts import dnscheck
from accounts.services.domains import domain_create

pytestmark = pytest.mark.django_db


def test_a_new_domain_lists_every_record_and_its_dkim_state(keys, cast):
    domain = domain_create(actor=None, customer=cast.a.customer, name="api-new.test")
    body = keys.client("customer_a").get(f"/api/v1/domains/{domain.pk}/").json()
    records = {r["kind"]: r for r in body["records"]}
    assert [kind for kind, r in records.items() if r["required"]] == ["mx", "spf", "dkim", "dmarc"]
    assert set(dnscheck.CLIENT_KINDS) == {kind for kind, r in records.items() if not r["required"]}
    assert records["dkim"]["short_name"] == f"{domain.dkim_selector}._domainkey"
    assert records["autoconfig"]["zone_line"] == f"autoconfig.api-new.test. IN CNAME {records['autoconfig']['value']}"
    assert body["dkim"]["signing"] is False and "not DKIM-signed yet" in body["dkim"]["text"]
