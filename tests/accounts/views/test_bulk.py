"""CSV import and export of domains, mailboxes and aliases: through the services (limits, audit), all or nothing,
every bad row reported at once, a dry run that shows what would change, generated passwords shown once."""

import csv
import io
import re
from urllib.parse import unquote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts import hashing
from accounts.models import Alias, AuditEntry, Customer, Domain, Mailbox
from accounts.services.bulk import bulk_import
from tests.support.permissions import assert_matrix

pytestmark = pytest.mark.django_db
URL = reverse("bulk")
MAILBOXES = "address,display_name,quota_mb,smtp_enabled,password\r\n" \
            "anna@alpha.test,Anna,200,yes,\r\nbob@alpha.test,,100,no,\r\n"


def _post(client, kind, text, *, preview=False, **extra):
    data = {"kind": kind, "text": text, "preview" if preview else "import": "1"}
    return client.post(URL + extra.pop("query", ""), data)


def test_permission_matrix(client, cast):
    expected = {"owner": 200, "support": 404, "reseller": 404, "other_reseller": 404, "sibling": 200,
                "other_customer": 200, "direct": 200, "mailbox_owner": 403}
    assert_matrix(client, cast, URL, expected)  # staff without ?customer= have no customer yet
    for_a = {"owner": 200, "support": 200, "reseller": 200, "other_reseller": 404, "sibling": 200,
             "other_customer": 200, "direct": 200, "mailbox_owner": 403}
    # A customer's own page ignores ?customer= (it is always its own); staff get only the customers they manage.
    assert_matrix(client, cast, f"{URL}?customer={cast.a.customer.pk}", for_a)
    assert_matrix(client, cast, reverse("bulk_export", args=["mailboxes"]) + f"?customer={cast.a.customer.pk}",
                  for_a)


def test_mailboxes_import_with_generated_passwords_shown_once_as_a_csv(client, cast):
    client.force_login(cast.a.user)
    response = _post(client, "mailboxes", MAILBOXES)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Imported: 2 created, 0 changed, 0 unchanged." in page
    anna = Mailbox.objects.get(local_part="anna", domain=cast.a.domain)
    assert (anna.display_name, anna.quota_mb, anna.smtp_enabled) == ("Anna", 200, True)
    download = re.search(r'download="mailbox-passwords.csv" href="data:text/csv;charset=utf-8,([^"]+)"', page)[1]
    rows = list(csv.reader(io.StringIO(unquote(download))))
    assert rows[0] == ["address", "password"] and [r[0] for r in rows[1:]] == ["anna@alpha.test", "bob@alpha.test"]
    assert hashing.check_hash(rows[1][1], anna.password_hash)
    assert AuditEntry.objects.filter(action="mailbox.create", object_repr="anna@alpha.test").exists()
    # Shown once: the same import again changes nothing and shows no password.
    again = _post(client, "mailboxes", MAILBOXES).content.decode()
    assert "0 created, 0 changed, 2 unchanged" in again and rows[1][1] not in again
    assert rows[1][1] not in client.get(URL).content.decode()


def test_one_bad_row_writes_nothing_and_every_bad_row_is_named(client, cast):
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_mailboxes=2)
    client.force_login(cast.a.user)
    text = ("address,quota_mb,smtp_enabled\r\n"
            "anna@alpha.test,100,yes\r\n"
            "bob@bravo.test,100,no\r\n"      # another customer's domain
            "carl@alpha.test,lots,no\r\n"    # not a number
            "dora@alpha.test,100,maybe\r\n"  # not yes/no
            "emil@alpha.test,100,no\r\n")    # over the plan: info@ and anna@ fill it
    response = _post(client, "mailboxes", text)
    rows = {row.line: row for row in response.context["result"].rows}
    assert "not one of Alpha's domains" in rows[3].error and "whole number" in rows[4].error
    assert "yes or no" in rows[5].error and rows[6].error and not rows[2].error
    assert not Mailbox.objects.filter(local_part__in=["anna", "emil"]).exists()
    assert not AuditEntry.objects.filter(action="mailbox.create", actor=cast.a.user).exists()
    assert "Nothing was imported" in response.content.decode()


def test_dry_run_shows_what_would_change_and_writes_nothing(client, cast):
    client.force_login(cast.a.user)
    text = "address,display_name,quota_mb,smtp_enabled\r\ninfo@alpha.test,Front desk,100,no\r\nnew@alpha.test,,50,no\r\n"
    response = _post(client, "mailboxes", text, preview=True)
    result = response.context["result"]
    assert [(r.key, r.action) for r in result.rows] == [("info@alpha.test", "update"), ("new@alpha.test", "create")]
    assert "SMTP access turned off" in result.rows[0].changes and result.passwords == []
    info = Mailbox.objects.get(pk=cast.a.mailbox.pk)
    assert info.smtp_enabled and info.display_name == ""
    assert not Mailbox.objects.filter(local_part="new").exists()
    page = response.content.decode()
    assert "Preview: nothing was written" in page and "Import these 2 rows" in page
    # The preview's button imports exactly what was previewed.
    assert _post(client, "mailboxes", text).context["result"].written
    assert Mailbox.objects.filter(local_part="new").exists() and not Mailbox.objects.get(pk=info.pk).smtp_enabled


def test_domains_and_aliases_round_trip_through_export(client, cast):
    client.force_login(cast.reseller_a_admin)
    query = f"?customer={cast.a.customer.pk}"
    response = client.post(URL + query, {"kind": "domains", "import": "1",
                                         "file": SimpleUploadedFile("d.csv", b"domain\nshop.alpha-two.test\n")})
    assert response.context["result"].written
    assert Domain.objects.get(name="shop.alpha-two.test").customer == cast.a.customer
    text = "address,destinations,description,enabled\r\nteam@alpha.test,info@alpha.test x@example.org,Team,yes\r\n"
    assert client.post(URL + query, {"kind": "aliases", "text": text, "import": "1"}).context["result"].written
    alias = Alias.objects.get(local_part="team")
    assert alias.destinations == ["info@alpha.test", "x@example.org"] and alias.description == "Team"
    for kind in ("domains", "mailboxes", "aliases"):
        exported = client.get(reverse("bulk_export", args=[kind]) + query)
        assert exported["Content-Disposition"] == f'attachment; filename="Alpha-{kind}.csv"'
        body = exported.content.decode()
        assert "bravo" not in body
        again = client.post(URL + query, {"kind": kind, "text": body, "preview": "1"}).context["result"]
        assert {r.action for r in again.rows} == {"unchanged"}, (kind, body)
    assert "team@alpha.test,info@alpha.test x@example.org,Team,yes" in \
        client.get(reverse("bulk_export", args=["aliases"]) + query).content.decode()


def test_a_reseller_imports_within_the_customers_plan_and_never_into_another_resellers(client, cast):
    client.force_login(cast.reseller_a_admin)
    response = _post(client, "domains", "domain\nx.test\n", query=f"?customer={cast.b.customer.pk}")
    assert response.status_code == 404 and not Domain.objects.filter(name="x.test").exists()
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_domains=2)
    result = _post(client, "domains", "domain\none.test\ntwo.test\n",
                   query=f"?customer={cast.a.customer.pk}").context["result"]
    assert not result.written and result.rows[1].error and not Domain.objects.filter(name="one.test").exists()


def test_a_file_that_is_no_such_csv_is_a_form_error(client, cast):
    client.force_login(cast.a.user)
    response = _post(client, "mailboxes", "email,quota\r\nx@alpha.test,1\r\n")
    assert "must name the columns" in response.content.decode()
    response = _post(client, "aliases", "address,destinations,colour\r\nx@alpha.test,y@alpha.test,red\r\n")
    assert "Unknown column colour" in response.content.decode()
    response = client.post(URL, {"kind": "domains", "import": "1"})
    assert "Choose a CSV file" in response.content.decode()


def test_the_service_is_all_or_nothing_without_the_panel(cast):
    result = bulk_import(actor=cast.a.user, customer=cast.a.customer, kind="domains",
                         text="domain\nfine.test\nbravo.test\n", dry_run=False)
    assert [bool(r.error) for r in result.rows] == [False, True] and not result.written
    assert not Domain.objects.filter(name="fine.test").exists()
