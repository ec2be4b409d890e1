import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from accounts.models import AuditEntry, Customer, Mailbox, Reseller, User
from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from accounts.services.limits import limit_set
from accounts.services.tenants import customer_create, user_create
from tests.support.factories import PASSWORD, make_cast


def _error(exc_info, field):
    return " ".join(exc_info.value.message_dict[field])


# --- who may change what -----------------------------------------------------------------------------------


def test_support_changes_any_limit_with_reason_and_it_is_audited(cast):
    limit_set(actor=cast.support, obj=cast.a.mailbox, changes={"send_per_hour": 10}, reason="ticket 7",
              client_ip="192.0.2.1")
    cast.a.mailbox.refresh_from_db()
    assert cast.a.mailbox.send_per_hour == 10
    entry = AuditEntry.objects.filter(action="mailbox.limits").get()
    assert entry.before == {"send_per_hour": None}
    assert entry.after == {"send_per_hour": 10}
    assert entry.reason == "ticket 7"
    assert entry.client_ip == "192.0.2.1"
    assert entry.actor == cast.support
    assert entry.customer == cast.a.customer


def test_support_must_give_a_reason(cast):
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.support, obj=cast.a.customer, changes={"max_domains": 9}, reason="  ")
    assert "reason" in exc.value.message_dict
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.max_domains == 5


def test_only_support_changes_a_resellers_pool(cast):
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.reseller_a_admin, obj=cast.reseller_a, changes={"max_customers": 1000})
    limit_set(actor=cast.support, obj=cast.reseller_a, changes={"max_customers": 1000}, reason="upgrade")
    cast.reseller_a.refresh_from_db()
    assert cast.reseller_a.max_customers == 1000


def test_reseller_admin_sets_its_customers_plan_not_others(cast):
    limit_set(actor=cast.reseller_a_admin, obj=cast.a.customer, changes={"max_mailboxes": 80})
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.max_mailboxes == 80
    for obj in (cast.b.customer, cast.direct.customer):
        with pytest.raises(PermissionDenied):
            limit_set(actor=cast.reseller_a_admin, obj=obj, changes={"max_mailboxes": 80})
    # A reseller admin sets plans, not the customer's own split.
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.reseller_a_admin, obj=cast.a.mailbox, changes={"quota_mb": 10})


def test_customer_splits_its_plan_but_cannot_change_the_plan(cast):
    limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"send_per_hour": 50})
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.a.user, obj=cast.a.customer, changes={"max_domains": 99})
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.a.user, obj=cast.b.domain, changes={"send_per_hour": 50})
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.a.user, obj=cast.b.mailbox, changes={"quota_mb": 50})


def test_mailbox_owner_changes_no_limits(cast):
    owner = user_create(actor=None, username="owner", password=PASSWORD, role=User.Role.MAILBOX)
    owner.mailbox = cast.a.mailbox
    owner.save()
    with pytest.raises(PermissionDenied):
        limit_set(actor=owner, obj=cast.a.mailbox, changes={"send_per_hour": 1})


def test_bad_values_are_refused_with_a_field_error(cast):
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"quota_mb": "lots"})
    assert "whole number" in _error(exc, "quota_mb")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"send_per_day": -1})
    assert "zero or more" in _error(exc, "send_per_day")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"quota_mb": ""})
    assert "Enter a number" in _error(exc, "quota_mb")
    with pytest.raises(ValueError):
        limit_set(actor=None, obj=cast.a.mailbox, changes={"local_part": "x"})


# --- the split inside a customer ---------------------------------------------------------------------------


def test_domain_and_mailbox_sending_cannot_exceed_the_customers(cast):
    limit_set(actor=cast.support, obj=cast.a.customer, changes={"send_per_hour": 100}, reason="plan")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"send_per_hour": 101})
    assert "The plan allows 100 recipients per hour" in _error(exc, "send_per_hour")
    limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"send_per_hour": 60})
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"send_per_hour": 61})
    assert "alpha.test allows 60" in _error(exc, "send_per_hour")
    limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"send_per_hour": 60})


def test_credential_sending_cannot_exceed_its_mailbox(cast):
    cred = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox).credential
    limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"send_per_day": 30})
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cred, changes={"send_per_day": 31})
    assert "info@alpha.test allows 30" in _error(exc, "send_per_day")
    limit_set(actor=cast.a.user, obj=cred, changes={"send_per_day": 30})
    # The mailbox can no longer go below what its credential holds.
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"send_per_day": 10})
    assert "lower that first" in _error(exc, "send_per_day")


def test_mailbox_storage_is_allocated_within_the_plan(cast):
    limit_set(actor=cast.support, obj=cast.a.customer, changes={"max_storage_mb": 300}, reason="plan")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"quota_mb": 301})
    assert "Your plan has 300 MB of storage left" in _error(exc, "quota_mb")
    limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"quota_mb": 300})


def test_domain_storage_is_allocated_within_the_plan_and_holds_its_mailboxes(cast):
    second = domain_create(actor=None, customer=cast.a.customer, name="alpha2.test", verified=True)
    limit_set(actor=cast.support, obj=cast.a.customer, changes={"max_storage_mb": 1000}, reason="plan")
    limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"max_storage_mb": 700})
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=second, changes={"max_storage_mb": 301})
    assert "300 MB of storage left to allocate to domains" in _error(exc, "max_storage_mb")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"max_storage_mb": 99})
    assert "hold 100 MB" in _error(exc, "max_storage_mb")
    limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"max_storage_mb": 150})
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"quota_mb": 151})
    assert "alpha.test has 150 MB of storage left" in _error(exc, "quota_mb")


def test_quota_cannot_go_below_what_the_mailbox_stores(cast):
    Mailbox.objects.filter(pk=cast.a.mailbox.pk).update(used_bytes=50 * 1024 * 1024 + 1)
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"quota_mb": 50})
    assert "already stores 51 MB" in _error(exc, "quota_mb")


def test_plan_cannot_go_below_current_use(cast):
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.support, obj=cast.a.customer, changes={"max_domains": 0}, reason="r")
    assert "uses 1 domains" in _error(exc, "max_domains")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.support, obj=cast.a.customer, changes={"max_storage_mb": 99}, reason="r")
    assert "uses 100 MB" in _error(exc, "max_storage_mb")
    limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"send_per_hour": 40})
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.support, obj=cast.a.customer, changes={"send_per_hour": 39}, reason="r")
    assert "allows 40 recipients per hour" in _error(exc, "send_per_hour")


def test_no_change_writes_no_audit_entry(cast):
    before = AuditEntry.objects.count()
    limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"quota_mb": cast.a.mailbox.quota_mb})
    assert AuditEntry.objects.count() == before


# --- the reseller's pool -----------------------------------------------------------------------------------


def test_reseller_cannot_hand_out_more_than_its_pool(cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_mailboxes=170)
    # Alpha holds 50 (the default plan): 120 left.
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.reseller_a_admin, obj=cast.a.customer, changes={"max_mailboxes": 171})
    assert _error(exc, "max_mailboxes") == "Your pool has 120 mailboxes left to hand out."
    limit_set(actor=cast.reseller_a_admin, obj=cast.a.customer, changes={"max_mailboxes": 170})


def test_pool_sending_must_be_handed_out_as_numbers(cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(send_per_hour=1000)
    Customer.objects.filter(pk=cast.a.customer.pk).update(send_per_hour=600)
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.reseller_a_admin, obj=cast.a.customer, changes={"send_per_hour": 1001})
    assert "400 recipients per hour left" in _error(exc, "send_per_hour")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.reseller_a_admin, obj=cast.a.customer, changes={"send_per_hour": None})
    assert "set a number" in _error(exc, "send_per_hour")


def test_pool_cannot_go_below_what_is_handed_out(cast):
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.support, obj=cast.reseller_a, changes={"max_mailboxes": 49}, reason="shrink")
    assert "handed out 50 mailboxes" in _error(exc, "max_mailboxes")
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.support, obj=cast.reseller_a, changes={"max_customers": 0}, reason="shrink")
    assert "has 1 customers" in _error(exc, "max_customers")
    limit_set(actor=cast.support, obj=cast.reseller_a, changes={"max_mailboxes": 50}, reason="shrink")


@pytest.mark.django_db(transaction=True)
def test_two_admins_allocating_the_last_of_the_pool_at_once_one_wins():
    cast = make_cast()
    second = customer_create(actor=None, name="Alpha Two", reseller=cast.reseller_a)
    # Two customers of 50 mailboxes each; the pool has room for 30 more in all.
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_mailboxes=130)
    other_admin = user_create(actor=None, username="reseller-a2", password=PASSWORD,
                              role=User.Role.RESELLER, reseller=cast.reseller_a)
    barrier = threading.Barrier(2)
    results = []

    def allocate(actor, customer):
        try:
            barrier.wait(timeout=10)
            limit_set(actor=actor, obj=customer, changes={"max_mailboxes": 70})
            results.append("ok")
        except ValidationError as exc:
            results.append(" ".join(exc.message_dict["max_mailboxes"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=allocate, args=(cast.reseller_a_admin, cast.a.customer)),
               threading.Thread(target=allocate, args=(other_admin, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["Your pool has 10 mailboxes left to hand out.", "ok"]
    total = sum(Customer.objects.filter(reseller=cast.reseller_a).values_list("max_mailboxes", flat=True))
    assert total == 120


def test_domain_cannot_go_below_what_its_mailboxes_allow(cast):
    limit_set(actor=cast.a.user, obj=cast.a.mailbox, changes={"send_per_day": 300})
    with pytest.raises(ValidationError) as exc:
        limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"send_per_day": 299})
    assert "A mailbox or credential of alpha.test allows 300 recipients per day" in _error(exc, "send_per_day")
    limit_set(actor=cast.a.user, obj=cast.a.domain, changes={"send_per_day": 300})


def test_reseller_pool_sending_is_support_only_and_audited_with_reason(cast):
    limit_set(actor=cast.support, obj=cast.reseller_a, changes={"send_per_hour": 5000}, reason="contract")
    entry = AuditEntry.objects.get(action="reseller.limits")
    assert (entry.before, entry.after, entry.reason, entry.reseller) == (
        {"send_per_hour": None}, {"send_per_hour": 5000}, "contract", cast.reseller_a)
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.a.user, obj=cast.reseller_a, changes={"send_per_hour": 1})
