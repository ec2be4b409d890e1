"""Lists of objects that belong to a domain (mailboxes, aliases) narrowed to one domain or one customer, within what
the key may see; an id that cannot be one answers 404."""

import pytest

from accounts.services.aliases import alias_create
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(cast):
    second = domain_create(actor=None, customer=cast.a.customer, name="second-alpha.test", verified=True)
    mailbox_create(actor=None, domain=second, local_part="sales", password=PASSWORD, quota_mb=10)
    for tenant, domain in ((cast.a, cast.a.domain), (cast.a, second), (cast.b, cast.b.domain)):
        alias_create(actor=None, domain=domain, local_part="team", destinations=[tenant.mailbox.address])
    return second


def _addresses(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return sorted(row["address"] for row in response.json()["results"])


@pytest.mark.parametrize("kind", ["mailboxes", "aliases"])
def test_a_list_narrowed_to_a_domain_or_a_customer(cast, keys, objects, kind):
    support = keys.client("support")
    local = "info" if kind == "mailboxes" else "team"
    by_domain = _addresses(support, f"/api/v1/{kind}/?domain={cast.a.domain.pk}")
    assert by_domain == [f"{local}@alpha.test"]
    by_customer = _addresses(support, f"/api/v1/{kind}/?customer={cast.a.customer.pk}")
    expected = ["info@alpha.test", "sales@second-alpha.test"] if kind == "mailboxes" else \
        ["team@alpha.test", "team@second-alpha.test"]
    assert by_customer == expected
    both = _addresses(support, f"/api/v1/{kind}/?customer={cast.a.customer.pk}&domain={objects.pk}")
    assert both == [expected[1]]
    # Another reseller's customer: nothing of it in this reseller's list, whatever the filter names.
    assert _addresses(keys.client("reseller_a"), f"/api/v1/{kind}/?customer={cast.b.customer.pk}") == []
    for bad in ("x", "0", "-3", "99999999999999999999"):
        assert support.get(f"/api/v1/{kind}/?domain={bad}").status_code == 404
        assert support.get(f"/api/v1/{kind}/?customer={bad}").status_code == 404
