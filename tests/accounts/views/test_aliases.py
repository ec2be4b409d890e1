import pytest
from django.urls import reverse

from accounts.models import Alias, AuditEntry
from accounts.selectors.recipients import resolve_recipient
from accounts.services.aliases import alias_create
from accounts.services.domains import domain_create
from tests.support.permissions import MANAGE, assert_matrix, assert_shows_only, mailbox_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alias(cast):
    return alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["info@alpha.test"])


def test_alias_pages_permission_matrix(client, cast, alias):
    for name in ("alias_edit", "alias_delete"):
        assert_matrix(client, cast, reverse(name, args=[alias.pk]), MANAGE)
    assert_matrix(client, cast, reverse("alias_add", args=[cast.a.domain.pk]), MANAGE)
    assert_matrix(client, cast, reverse("mailbox_forwarding", args=[cast.a.mailbox.pk]), MANAGE)
    assert_matrix(client, cast, reverse("alias_list"), {who: 200 for who in MANAGE})
    for name in ("domain_catchall", "domain_alias_of"):
        assert_matrix(client, cast, reverse(name, args=[cast.a.domain.pk]),
                      {who: 302 if status == 200 else status for who, status in MANAGE.items()}, method="post")
    # Nothing of another tenant changed by the refused POSTs.
    assert not AuditEntry.objects.filter(action__in=["domain.catchall", "domain.alias_of"]).exclude(
        actor__in=[cast.a.user, cast.support, cast.reseller_a_admin]).exists()


def test_alias_list_shows_no_foreign_aliases(client, cast, alias):
    alias_create(actor=None, domain=cast.b.domain, local_part="crew", destinations=["info@bravo.test"])
    url = reverse("alias_list")
    assert_shows_only(client, cast.a.user, url, ("team@alpha.test",), ("bravo.test", "crew@"))
    assert_shows_only(client, cast.reseller_a_admin, url, ("team@alpha.test",), ("bravo.test",))
    assert_shows_only(client, cast.support, url, ("team@alpha.test", "crew@bravo.test"), ())
    assert_shows_only(client, mailbox_user(cast.a.mailbox), url, (), ("team@alpha.test",))


def test_customer_creates_edits_and_deletes_an_alias(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("alias_add", args=[cast.a.domain.pk]),
                           {"local_part": "Team", "destinations": "info@alpha.test\nboss@example.org",
                            "is_enabled": "on"}, REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 302 and response["Location"] == reverse("alias_list")
    alias = Alias.objects.get(local_part="team")
    assert resolve_recipient("team@alpha.test").external == ("boss@example.org",)
    assert AuditEntry.objects.get(action="alias.create").client_ip == "192.0.2.7"
    assert "Alias team@alpha.test was created" in client.get(response["Location"]).content.decode()

    response = client.post(reverse("alias_edit", args=[alias.pk]), {"destinations": "info@alpha.test"})
    assert response.status_code == 302
    alias.refresh_from_db()
    assert alias.destinations == ["info@alpha.test"] and not alias.is_enabled  # the box was left unticked

    response = client.post(reverse("alias_delete", args=[alias.pk]))
    assert response.status_code == 302 and not Alias.objects.exists()


def test_create_alias_shows_errors_next_to_the_fields(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("alias_add", args=[cast.a.domain.pk]),
                           {"local_part": "info", "destinations": "nobody@alpha.test"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "There is no mailbox or alias nobody@alpha.test." in errors["destinations"]
    assert not Alias.objects.exists()


def test_domain_page_sets_catchall_and_alias_domain(client, cast, alias):
    client.force_login(cast.a.user)
    page = client.get(reverse("domain_detail", args=[cast.a.domain.pk])).content.decode()
    assert "team@alpha.test" in page and "Catch-all" in page
    response = client.post(reverse("domain_catchall", args=[cast.a.domain.pk]), {"catchall": "info@alpha.test"},
                           follow=True)
    assert "The catch-all of alpha.test is saved." in response.content.decode()
    assert resolve_recipient("anything@alpha.test").mailbox_ids == (cast.a.mailbox.pk,)
    response = client.post(reverse("domain_catchall", args=[cast.a.domain.pk]), {"catchall": "not an address"},
                           follow=True)
    assert "is not an e-mail address" in response.content.decode()

    extra = domain_create(actor=None, customer=cast.a.customer, name="alpha-extra.test", verified=True)
    response = client.post(reverse("domain_alias_of", args=[extra.pk]), {"alias_of": cast.a.domain.pk})
    assert response.status_code == 302
    assert resolve_recipient("team@alpha-extra.test").mailbox_ids == (cast.a.mailbox.pk,)
    # Another customer's domain is not a choice.
    response = client.post(reverse("domain_alias_of", args=[extra.pk]), {"alias_of": cast.b.domain.pk},
                           follow=True)
    assert "Select a valid choice" in response.content.decode()
    extra.refresh_from_db()
    assert extra.alias_of == cast.a.domain


def test_mailbox_forwarding_page(client, cast):
    client.force_login(cast.reseller_a_admin)
    url = reverse("mailbox_forwarding", args=[cast.a.mailbox.pk])
    response = client.post(url, {"forward_to": "me@example.org"})  # keep_copy unticked
    assert response.status_code == 302
    route = resolve_recipient("info@alpha.test")
    assert route.mailbox_ids == () and route.external == ("me@example.org",)
    assert "me@example.org" in client.get(url).content.decode()
    assert AuditEntry.objects.get(action="mailbox.forwarding").actor == cast.reseller_a_admin


def test_another_tenants_post_changes_nothing(client, cast, alias):
    client.force_login(cast.b.user)
    assert client.post(reverse("alias_edit", args=[alias.pk]), {"destinations": "x@example.org"}).status_code == 404
    alias.refresh_from_db()
    assert alias.destinations == ["info@alpha.test"]
