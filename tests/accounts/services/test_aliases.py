"""Aliases, catch-alls, alias domains and forwarding: plan limits, validation and the audit log."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Alias, AuditEntry, Customer, Reseller
from accounts.services.aliases import (alias_create, alias_delete, alias_update, domain_set_alias_of,
                                       domain_set_catchall, mailbox_set_forwarding)
from accounts.services.domains import domain_create
from accounts.services.limits import limit_set
from accounts.services.mailboxes import mailbox_create
from accounts.services.tenants import reseller_customer_create
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db


def errors(exc) -> str:
    return " ".join(exc.value.messages)


def test_create_normalises_and_audits(cast):
    alias = alias_create(actor=cast.a.user, domain=cast.a.domain, local_part="Team",
                         destinations="INFO@alpha.test, Boss@Bücher.Example", client_ip="192.0.2.1")
    assert alias.local_part == "team"
    assert alias.destinations == ["info@alpha.test", "Boss@xn--bcher-kva.example"]
    entry = AuditEntry.objects.get(action="alias.create")
    assert entry.actor == cast.a.user and entry.customer == cast.a.customer and entry.client_ip == "192.0.2.1"
    assert entry.after["destinations"] == alias.destinations


def test_destinations_are_checked(cast):
    with pytest.raises(ValidationError) as caught:
        alias_create(actor=None, domain=cast.a.domain, local_part="team",
                     destinations=["not an address", "nobody@alpha.test", "x@bad_domain"])
    text = errors(caught)
    assert "“not” is not an e-mail address" in text or "not an e-mail address" in text
    assert "There is no mailbox or alias nobody@alpha.test" in text
    with pytest.raises(ValidationError, match="at least one destination"):
        alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=[])
    with pytest.raises(ValidationError, match="its own destination"):
        alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["team@alpha.test"])
    # Another customer's addresses are taken like external ones: no enumeration of who exists there.
    assert alias_create(actor=None, domain=cast.a.domain, local_part="team",
                        destinations=["whoever@bravo.test"]).destinations == ["whoever@bravo.test"]
    assert not AuditEntry.objects.filter(action="alias.create", object_repr="team@alpha.test").count() > 1


def test_an_alias_and_a_mailbox_cannot_share_an_address(cast):
    with pytest.raises(ValidationError, match="is a mailbox"):
        alias_create(actor=None, domain=cast.a.domain, local_part="info", destinations=["x@example.org"])
    alias_create(actor=None, domain=cast.a.domain, local_part="sales", destinations=["x@example.org"])
    with pytest.raises(ValidationError, match="is an alias"):
        mailbox_create(actor=None, domain=cast.a.domain, local_part="sales", password=PASSWORD, quota_mb=10)
    with pytest.raises(ValidationError, match="already exists"):
        alias_create(actor=None, domain=cast.a.domain, local_part="Sales", destinations=["y@example.org"])


def test_the_plan_limits_aliases(cast):
    Customer.objects.filter(pk=cast.a.customer.pk).update(max_aliases=2)
    for n in range(2):
        alias_create(actor=None, domain=cast.a.domain, local_part=f"a{n}", destinations=["x@example.org"])
    with pytest.raises(ValidationError, match="allows 2 aliases and all are in use"):
        alias_create(actor=None, domain=cast.a.domain, local_part="a2", destinations=["x@example.org"])
    assert Alias.objects.count() == 2
    # The plan cannot go below what is in use.
    with pytest.raises(ValidationError, match="uses 2 aliases"):
        limit_set(actor=None, obj=cast.a.customer, changes={"max_aliases": 1})


def test_a_resellers_pool_limits_the_aliases_it_hands_out(cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_aliases=150)
    with pytest.raises(ValidationError, match="Your pool has 50 aliases left to hand out"):
        reseller_customer_create(actor=cast.reseller_a_admin, reseller=cast.reseller_a, name="Charlie",
                                 username="charlie", password="long enough secret", max_aliases=51)
    customer = reseller_customer_create(actor=cast.reseller_a_admin, reseller=cast.reseller_a, name="Charlie",
                                        username="charlie", password="long enough secret", max_aliases=50)
    assert customer.max_aliases == 50
    with pytest.raises(ValidationError, match="Your pool has 0 aliases left"):
        limit_set(actor=cast.reseller_a_admin, obj=cast.a.customer, changes={"max_aliases": 101})


def test_update_and_delete_are_audited(cast):
    alias = alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["x@example.org"])
    alias_update(actor=cast.a.user, alias=alias, destinations=["info@alpha.test"], is_enabled=False)
    alias.refresh_from_db()
    assert alias.destinations == ["info@alpha.test"] and not alias.is_enabled
    entry = AuditEntry.objects.get(action="alias.update")
    assert entry.before["destinations"] == ["x@example.org"] and entry.after["destinations"] == ["info@alpha.test"]
    alias_update(actor=cast.a.user, alias=alias, is_enabled=False)  # no change, no entry
    assert AuditEntry.objects.filter(action="alias.update").count() == 1
    alias_delete(actor=cast.a.user, alias=alias)
    assert not Alias.objects.exists()
    assert AuditEntry.objects.get(action="alias.delete").before["local_part"] == "team"


def test_catchall_set_and_off_audited(cast):
    domain_set_catchall(actor=cast.a.user, domain=cast.a.domain, destination="Info@Alpha.test")
    cast.a.domain.refresh_from_db()
    assert cast.a.domain.catchall == "info@alpha.test"
    with pytest.raises(ValidationError, match="only the catch-all itself"):
        domain_set_catchall(actor=None, domain=cast.a.domain, destination="nobody@alpha.test")
    domain_set_catchall(actor=cast.a.user, domain=cast.a.domain, destination="")
    entries = list(AuditEntry.objects.filter(action="domain.catchall").order_by("id").values_list("after", flat=True))
    assert entries == [{"catchall": "info@alpha.test"}, {"catchall": ""}]


def test_alias_domain_rules(cast):
    extra = domain_create(actor=None, customer=cast.a.customer, name="alpha-extra.test")
    with pytest.raises(ValidationError, match="your own domains"):
        domain_set_alias_of(actor=None, domain=extra, target=cast.b.domain)
    with pytest.raises(ValidationError, match="alias of itself"):
        domain_set_alias_of(actor=None, domain=extra, target=extra)
    domain_set_alias_of(actor=cast.a.user, domain=extra, target=cast.a.domain)
    third = domain_create(actor=None, customer=cast.a.customer, name="alpha-third.test")
    with pytest.raises(ValidationError, match="itself an alias domain"):
        domain_set_alias_of(actor=None, domain=third, target=extra)
    with pytest.raises(ValidationError, match="is the target of"):
        domain_set_alias_of(actor=None, domain=cast.a.domain, target=third)
    entry = AuditEntry.objects.get(action="domain.alias_of")
    assert entry.after == {"alias_of": cast.a.domain.pk, "alias_of_name": "alpha.test"}
    domain_set_alias_of(actor=cast.a.user, domain=extra, target=None)
    extra.refresh_from_db()
    assert extra.alias_of is None


def test_forwarding(cast):
    mailbox_set_forwarding(actor=cast.a.user, mailbox=cast.a.mailbox, addresses="me@example.org", keep_copy=False)
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.forward_to == ["me@example.org"] and not cast.a.mailbox.forward_keep_copy
    with pytest.raises(ValidationError, match="its own destination"):
        mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=["info@alpha.test"])
    with pytest.raises(ValidationError, match="at most 10"):
        mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=[f"m{n}@example.org" for n in range(11)])
    # No forwards: the mailbox keeps its mail, whatever was asked.
    mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=[], keep_copy=False)
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.forward_to == [] and cast.a.mailbox.forward_keep_copy
    assert AuditEntry.objects.filter(action="mailbox.forwarding").count() == 2
