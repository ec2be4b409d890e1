"""Panel lists cost the same number of queries for 2 rows as for 40 (no query per row)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import Customer, Domain, Mailbox, SmtpCredential

pytestmark = pytest.mark.django_db


def _grow(cast, n: int) -> None:
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_domains=1000, max_mailboxes=1000)
    for i in range(n):
        domain = Domain.objects.create(name=f"extra{i}.alpha.test", customer=cast.a.customer)
        mailbox = Mailbox.objects.create(domain=domain, local_part=f"box{i}", password_hash="x", quota_mb=1)
        SmtpCredential.objects.create(username=f"smtp-extra{i}", secret_hash="x", customer=cast.a.customer,
                                      domain=domain, mailbox=mailbox if i % 2 else None)


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", ["dashboard", "domain_list", "mailbox_list", "credential_list"])
@pytest.mark.parametrize("who", ["a", "support"])
def test_list_queries_do_not_grow_with_rows(client, cast, name, who):
    services.credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    client.force_login(cast.a.user if who == "a" else cast.support)
    if name == "dashboard" and who == "support":
        url = reverse("customer_dashboard", args=[cast.a.customer.pk])
    else:
        url = reverse(name)
    few = _queries(client, url)
    _grow(cast, 40)
    assert _queries(client, url) == few
