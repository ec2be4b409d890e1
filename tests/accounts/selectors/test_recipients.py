"""resolve_recipient: what the MX answers at RCPT, for every kind of address we host."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Domain, Mailbox, Reseller, Status
from accounts.selectors.recipients import MAX_HOPS, Forwarder, RecipientRefused, Route, resolve_recipient
from accounts.services.aliases import (alias_create, domain_set_alias_of, domain_set_catchall,
                                       mailbox_set_forwarding)
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.suspension import suspend
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db


def refused(address: str) -> str:
    with pytest.raises(RecipientRefused) as caught:
        resolve_recipient(address)
    return caught.value.reply


def mailbox(domain, local: str) -> Mailbox:
    return mailbox_create(actor=None, domain=domain, local_part=local, password=PASSWORD, quota_mb=10)


def test_a_mailbox_in_any_case_and_form(cast):
    route = resolve_recipient("<INFO@Alpha.Test>")
    assert route == Route(mailbox_ids=(cast.a.mailbox.pk,), external=())


def test_mailbox_route_takes_two_queries(cast):
    with CaptureQueriesContext(connection) as queries:
        resolve_recipient("info@alpha.test")
    assert len(queries) == 2


def test_not_hosted_or_not_verified_is_relay_access_denied(cast):
    pending = domain_create(actor=None, customer=cast.a.customer, name="pending.test")
    mailbox(pending, "info")
    for address in ("someone@example.org", "info@pending.test", "info@[127.0.0.1]", "@alpha.test:x@example.org",
                    "info%example.org", "info", ""):
        assert refused(address) == "554 5.7.1 Relay access denied", address


def test_unknown_local_part_is_user_unknown(cast):
    assert refused("nobody@alpha.test") == "550 5.1.1 User unknown"
    # Tricks at a hosted domain are just local parts that do not exist, never relaying.
    assert refused("someone%example.org@alpha.test") == "550 5.1.1 User unknown"
    assert refused('"info"@alpha.test') == "550 5.1.1 User unknown"


def test_suspended_mailbox_domain_customer_reseller_are_550_5_2_1(cast):
    suspend(actor=None, obj=cast.a.mailbox, reason="abuse")
    assert refused("info@alpha.test").startswith("550 5.2.1")
    suspend(actor=None, obj=cast.b.domain, reason="abuse")
    assert refused("info@bravo.test").startswith("550 5.2.1")
    suspend(actor=None, obj=cast.direct.customer, reason="unpaid")
    assert refused("info@direct.test").startswith("550 5.2.1")
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(status=Status.SUSPENDED)
    other = mailbox(cast.a.domain, "sales")
    assert other and refused("sales@alpha.test").startswith("550 5.2.1")


def test_mailbox_over_quota_is_mailbox_full(cast):
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(used_bytes=100 * 1024 * 1024)
    assert refused("info@alpha.test") == "552 5.2.2 Mailbox full"


def test_alias_to_two_mailboxes_and_an_external_address(cast):
    sales = mailbox(cast.a.domain, "sales")
    alias_create(actor=None, domain=cast.a.domain, local_part="team",
                 destinations=["info@alpha.test", "Sales@ALPHA.test", "Boss@Example.ORG"])
    route = resolve_recipient("team@alpha.test")
    assert route == Route(mailbox_ids=(cast.a.mailbox.pk, sales.pk), external=("Boss@example.org",),
                          forwarders=(Forwarder(cast.a.domain.pk),))


def test_a_disabled_alias_is_unknown(cast):
    alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["info@alpha.test"],
                 is_enabled=False)
    assert refused("team@alpha.test") == "550 5.1.1 User unknown"


def test_chain_of_aliases_is_followed_and_deduplicated(cast):
    alias_create(actor=None, domain=cast.a.domain, local_part="first", destinations=["info@alpha.test"])
    alias_create(actor=None, domain=cast.a.domain, local_part="all", destinations=["first@alpha.test",
                                                                                      "info@alpha.test"])
    assert resolve_recipient("all@alpha.test") == Route(mailbox_ids=(cast.a.mailbox.pk,), external=())


def test_a_loop_between_two_aliases_is_refused(cast):
    alias_create(actor=None, domain=cast.a.domain, local_part="ping", destinations=["info@alpha.test"])
    alias_create(actor=None, domain=cast.a.domain, local_part="pong", destinations=["ping@alpha.test"])
    from accounts.models import Alias
    Alias.objects.filter(local_part="ping").update(destinations=["pong@alpha.test"])
    assert refused("ping@alpha.test") == "550 5.4.6 Alias loop detected"
    assert refused("pong@alpha.test") == "550 5.4.6 Alias loop detected"


def test_a_chain_deeper_than_the_limit_is_refused(cast):
    previous = "info@alpha.test"
    for n in range(MAX_HOPS + 1):
        alias_create(actor=None, domain=cast.a.domain, local_part=f"hop{n}", destinations=[previous])
        previous = f"hop{n}@alpha.test"
    assert resolve_recipient(f"hop{MAX_HOPS - 1}@alpha.test").mailbox_ids == (cast.a.mailbox.pk,)
    assert refused(f"hop{MAX_HOPS}@alpha.test") == "550 5.4.6 Too many alias hops"


def test_suspended_or_full_destinations_are_left_out_and_refuse_only_when_nothing_is_left(cast):
    sales = mailbox(cast.a.domain, "sales")
    alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["info@alpha.test",
                                                                                       "sales@alpha.test"])
    alias_create(actor=None, domain=cast.a.domain, local_part="one", destinations=["sales@alpha.test"])
    suspend(actor=None, obj=sales, reason="left the company")
    assert resolve_recipient("team@alpha.test").mailbox_ids == (cast.a.mailbox.pk,)
    assert refused("one@alpha.test").startswith("550 5.2.1")
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(used_bytes=10**12)
    assert refused("team@alpha.test") == "552 5.2.2 Mailbox full"  # the first reason met (info@ comes first)


def test_catch_all_takes_what_nothing_else_takes(cast):
    assert refused("anything@alpha.test") == "550 5.1.1 User unknown"
    domain_set_catchall(actor=None, domain=cast.a.domain, destination="info@alpha.test")
    assert resolve_recipient("anything@alpha.test").mailbox_ids == (cast.a.mailbox.pk,)
    # Mailboxes and aliases still come first.
    sales = mailbox(cast.a.domain, "sales")
    assert resolve_recipient("sales@alpha.test").mailbox_ids == (sales.pk,)
    domain_set_catchall(actor=None, domain=cast.a.domain, destination="")
    assert refused("anything@alpha.test") == "550 5.1.1 User unknown"


def test_catch_all_to_an_external_address(cast):
    domain_set_catchall(actor=None, domain=cast.a.domain, destination="archive@example.org")
    assert resolve_recipient("x@alpha.test") == Route(mailbox_ids=(), external=("archive@example.org",),
                                                      forwarders=(Forwarder(cast.a.domain.pk),))


def test_alias_domain_maps_every_local_part_to_the_target(cast):
    extra = domain_create(actor=None, customer=cast.a.customer, name="alpha-extra.test", verified=True)
    domain_set_alias_of(actor=None, domain=extra, target=cast.a.domain)
    assert resolve_recipient("INFO@alpha-extra.test").mailbox_ids == (cast.a.mailbox.pk,)
    assert refused("nobody@alpha-extra.test") == "550 5.1.1 User unknown"
    alias_create(actor=None, domain=cast.a.domain, local_part="team", destinations=["x@example.org"])
    assert resolve_recipient("team@alpha-extra.test").external == ("x@example.org",)
    # The alias domain's own mailboxes come first.
    own = mailbox(extra, "info")
    assert resolve_recipient("info@alpha-extra.test").mailbox_ids == (own.pk,)


def test_alias_domain_still_needs_its_own_verification(cast):
    extra = domain_create(actor=None, customer=cast.a.customer, name="alpha-extra.test")
    domain_set_alias_of(actor=None, domain=extra, target=cast.a.domain)
    assert refused("info@alpha-extra.test") == "554 5.7.1 Relay access denied"


def test_mailbox_forward_copy_with_and_without_keeping_a_copy(cast):
    mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=["me@example.org"], keep_copy=True)
    by_mailbox = (Forwarder(cast.a.domain.pk, cast.a.mailbox.pk),)
    assert resolve_recipient("info@alpha.test") == Route(mailbox_ids=(cast.a.mailbox.pk,), external=("me@example.org",),
                                                         forwarders=by_mailbox)
    mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=["me@example.org"], keep_copy=False)
    assert resolve_recipient("info@alpha.test") == Route(mailbox_ids=(), external=("me@example.org",),
                                                         forwarders=by_mailbox)
    # Without a copy kept, a full mailbox does not stop the forward.
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(used_bytes=10**12)
    assert resolve_recipient("info@alpha.test").external == ("me@example.org",)


def test_an_outside_address_is_forwarded_by_the_hosted_address_that_names_it(cast):
    # alpha's alias leads to bravo's alias and to alpha's mailbox, which forwards a copy: each outside copy is sent by
    # the domain (and mailbox) whose alias or forward names it, not by the domain the message was addressed to.
    alias_create(actor=None, domain=cast.b.domain, local_part="sales", destinations=["agent@example.org"])
    mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox, addresses=["me@example.org"])
    alias_create(actor=None, domain=cast.a.domain, local_part="team",
                 destinations=["sales@bravo.test", "info@alpha.test", "boss@example.org"])
    route = resolve_recipient("team@alpha.test")
    assert dict(zip(route.external, route.forwarders)) == {
        "agent@example.org": Forwarder(cast.b.domain.pk),
        "me@example.org": Forwarder(cast.a.domain.pk, cast.a.mailbox.pk),
        "boss@example.org": Forwarder(cast.a.domain.pk),
    }


def test_alias_to_another_customers_mailbox_is_delivered_here(cast):
    alias_create(actor=None, domain=cast.a.domain, local_part="partner", destinations=["info@bravo.test"])
    assert resolve_recipient("partner@alpha.test").mailbox_ids == (cast.b.mailbox.pk,)


def test_a_domain_gone_pending_refuses_its_aliases_destinations(cast):
    alias_create(actor=None, domain=cast.a.domain, local_part="partner", destinations=["info@bravo.test"])
    Domain.objects.filter(pk=cast.b.domain.pk).update(verified_at=None)
    assert refused("partner@alpha.test") == "550 5.1.1 User unknown"


def test_postmaster_at_every_hosted_domain_goes_to_its_first_mailbox_in_any_case(cast):
    # RFC 5321 4.5.1: postmaster must be accepted at every domain that takes mail.
    mailbox(cast.a.domain, "zz-later")
    for address in ("postmaster@alpha.test", "<PostMaster@ALPHA.test>"):
        assert resolve_recipient(address) == Route(mailbox_ids=(cast.a.mailbox.pk,), external=()), address


def test_postmaster_of_a_domain_without_mailboxes_goes_to_the_customers_first_mailbox(cast):
    empty = domain_create(actor=None, customer=cast.a.customer, name="empty.test")
    Domain.objects.filter(pk=empty.pk).update(verified_at=cast.a.domain.verified_at)
    assert resolve_recipient("postmaster@empty.test") == Route(mailbox_ids=(cast.a.mailbox.pk,), external=())
    assert refused("someone@empty.test") == "550 5.1.1 User unknown"


def test_a_postmaster_mailbox_alias_or_catch_all_wins(cast):
    catchall = mailbox(cast.a.domain, "catchall")
    domain_set_catchall(actor=None, domain=cast.a.domain, destination="catchall@alpha.test")
    assert resolve_recipient("postmaster@alpha.test").mailbox_ids == (catchall.pk,)
    alias_create(actor=None, domain=cast.a.domain, local_part="postmaster", destinations=["abuse@example.org"])
    assert resolve_recipient("postmaster@alpha.test") == Route(mailbox_ids=(), external=("abuse@example.org",),
                                                               forwarders=(Forwarder(cast.a.domain.pk),))


def test_postmaster_of_a_suspended_domain_is_still_refused(cast):
    suspend(actor=None, obj=cast.b.domain, reason="abuse")
    assert refused("postmaster@bravo.test").startswith("550 5.2.1")


def test_bare_postmaster_goes_to_the_providers_domain(cast, settings):
    settings.MX_POSTMASTER_DOMAIN = "alpha.test"
    assert resolve_recipient("<Postmaster>") == Route(mailbox_ids=(cast.a.mailbox.pk,), external=())
    assert refused("<info>") == "554 5.7.1 Relay access denied"
