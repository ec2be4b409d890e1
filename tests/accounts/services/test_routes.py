"""Every change to where mail for an address goes moves the route generation the MX processes follow."""

import pytest

from accounts.selectors.recipients import route_generation
from accounts.services.aliases import (alias_create, alias_delete, alias_update, domain_set_catchall,
                                       mailbox_set_forwarding)
from accounts.services.domains import domain_delete, domain_set_dmarc_reject_policy
from accounts.services.mailboxes import mailbox_create, mailbox_delete, mailbox_update
from accounts.services.suspension import restore, suspend
from accounts.services.tenants import customer_delete

pytestmark = pytest.mark.django_db


def _alias(cast):
    return alias_create(actor=None, domain=cast.a.domain, local_part="sales", destinations=["info@alpha.test"])


CHANGES = {
    "mailbox suspended": lambda cast: suspend(actor=None, obj=cast.a.mailbox, reason="x"),
    "domain suspended": lambda cast: suspend(actor=None, obj=cast.a.domain, reason="x"),
    "customer suspended": lambda cast: suspend(actor=None, obj=cast.a.customer, reason="x"),
    "reseller suspended": lambda cast: suspend(actor=None, obj=cast.reseller_a, reason="x"),
    "mailbox disabled": lambda cast: mailbox_update(actor=None, mailbox=cast.a.mailbox, is_active=False),
    "mailbox deleted": lambda cast: mailbox_delete(actor=None, mailbox=cast.a.mailbox),
    "mailbox created": lambda cast: mailbox_create(actor=None, domain=cast.a.domain, local_part="new",
                                                   password="a good long password 1"),
    "domain deleted": lambda cast: domain_delete(actor=None, domain=cast.a.domain),
    "customer deleted": lambda cast: customer_delete(actor=None, customer=cast.a.customer),
    "alias created": _alias,
    "alias disabled": lambda cast: alias_update(actor=None, alias=_alias(cast), is_enabled=False),
    "alias deleted": lambda cast: alias_delete(actor=None, alias=_alias(cast)),
    "catch-all set": lambda cast: domain_set_catchall(actor=None, domain=cast.a.domain, destination="info@alpha.test"),
    "forward set": lambda cast: mailbox_set_forwarding(actor=None, mailbox=cast.a.mailbox,
                                                       addresses=["someone@elsewhere.example"]),
    "DMARC policy relaxed": lambda cast: domain_set_dmarc_reject_policy(actor=None, domain=cast.a.domain,
                                                                        policy="mark"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_the_change_moves_the_route_generation(cast, change):
    before = route_generation()
    CHANGES[change](cast)
    assert route_generation() > before


def test_restoring_moves_it_too_and_a_credential_suspension_does_not(cast):
    suspend(actor=None, obj=cast.a.mailbox, reason="x")
    before = route_generation()
    restore(actor=None, obj=cast.a.mailbox, reason="x")
    assert route_generation() == before + 1
    from accounts.services.credentials import credential_create

    credential = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox).credential
    before = route_generation()
    suspend(actor=None, obj=credential, reason="x")
    assert route_generation() == before


def test_dovecot_usage_moves_it_only_when_a_mailbox_fills_up_or_frees_room(cast):
    from accounts.models import DovecotQuota
    from accounts.services.mailboxes import mailboxes_import_dovecot_usage

    quota = cast.a.mailbox.quota_mb * 1024 * 1024
    row = DovecotQuota.objects.create(username="info@alpha.test", bytes=1000, messages=1)
    before = route_generation()
    mailboxes_import_dovecot_usage()
    assert route_generation() == before  # more used, still room: the MX's answer is the same
    row.bytes = quota
    row.save()
    mailboxes_import_dovecot_usage()
    assert route_generation() == before + 1  # full: refused at the next RCPT
    row.bytes = quota - 1
    row.save()
    mailboxes_import_dovecot_usage()
    assert route_generation() == before + 2
