from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from accounts import quotas
from accounts.models import Customer, Domain, Mailbox, Reseller, SendUsage, SmtpCredential
from accounts.quotas import QuotaExceeded
from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.tenants import customer_create
from tests.support.quotas import check_and_count, levels_for, usage_for

T0 = datetime(2026, 11, 25, 14, 5, 30, tzinfo=UTC)


def send(n, *, mailbox=None, credential=None, now=T0):
    with transaction.atomic():
        check_and_count(mailbox=mailbox, credential=credential, recipients=n, now=now)


def set_limit(obj, **limits):
    type(obj).objects.filter(pk=obj.pk).update(**limits)


def owners(tenant, credential=None):
    return {"credential": credential, "mailbox": tenant.mailbox, "domain": tenant.domain,
            "customer": tenant.customer, "reseller": tenant.customer.reseller}


@pytest.fixture
def credential(cast):
    return credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox).credential


@pytest.fixture
def domain_credential(cast):
    return credential_create(actor=None, domain=cast.a.domain).credential


def test_levels_of_a_mailbox_go_up_to_the_reseller(cast):
    set_limit(cast.a.domain, send_per_hour=50)
    levels = levels_for(mailbox=cast.a.mailbox)
    assert [lv.label for lv in levels] == ["mailbox info@alpha.test", "domain alpha.test", "customer Alpha",
                                           "reseller Reseller A"]
    assert [(lv.per_hour, lv.per_day) for lv in levels] == [(None, None), (50, None), (None, None), (None, None)]
    assert levels[0].scope == "mailbox" and levels[0].scope_id == cast.a.mailbox.pk


def test_customer_without_reseller_has_no_reseller_level(cast):
    assert [lv.scope for lv in levels_for(mailbox=cast.direct.mailbox)] == ["mailbox", "domain", "customer"]


def test_credential_of_a_mailbox_is_held_to_the_mailbox_too(credential, domain_credential):
    assert [lv.scope for lv in levels_for(credential=credential)] == [
 "credential", "mailbox", "domain", "customer", "reseller"]
    levels = levels_for(credential=domain_credential)
    assert [lv.scope for lv in levels] == ["credential", "domain", "customer", "reseller"]
    assert levels[0].label == f"credential {domain_credential.username}"


def test_levels_need_exactly_one_sender(cast, credential):
    with pytest.raises(TypeError):
        levels_for()
    with pytest.raises(TypeError):
        levels_for(mailbox=cast.a.mailbox, credential=credential)


def test_each_recipient_counts_at_every_level(cast, credential):
    send(3, credential=credential)
    for scope, obj in owners(cast.a, credential).items():
        assert quotas.usage(scope=scope, scope_id=obj.pk, now=T0) == {"hour": 3, "day": 3}, scope
    # Another customer's levels are untouched.
    assert quotas.usage(scope="customer", scope_id=cast.b.customer.pk, now=T0) == {"hour": 0, "day": 0}


@pytest.mark.parametrize("window", ["hour", "day"])
@pytest.mark.parametrize("scope", ["credential", "mailbox", "domain", "customer", "reseller"])
def test_every_level_limits_in_both_windows(cast, credential, scope, window):
    obj = owners(cast.a, credential)[scope]
    set_limit(obj, **{f"send_per_{window}": 5})
    send(4, credential=credential)
    send(1, credential=credential)
    with pytest.raises(QuotaExceeded) as exc:
        send(1, credential=credential)
    assert exc.value.level.scope == scope and exc.value.level.scope_id == obj.pk
    assert (exc.value.limit, exc.value.window, exc.value.used) == (5, window, 5)
    assert quotas.usage(scope="customer", scope_id=cast.a.customer.pk, now=T0)["hour"] == 5


def test_a_limit_counts_the_sends_of_every_sender_below_it(cast, credential):
    set_limit(cast.a.domain, send_per_hour=3)
    send(2, credential=credential)
    send(1, mailbox=cast.a.mailbox)
    with pytest.raises(QuotaExceeded) as exc:
        send(1, mailbox=cast.a.mailbox)
    assert exc.value.level.label == "domain alpha.test"


def test_reseller_limit_spans_its_customers(cast, settings):
    other = customer_create(actor=None, name="Alpha Two", reseller=cast.reseller_a)
    dom = domain_create(actor=None, customer=other, name="alpha-two.test", verified=True)
    box = mailbox_create(actor=None, domain=dom, local_part="info", password="correct horse battery")
    set_limit(cast.reseller_a, send_per_day=10)
    send(6, mailbox=cast.a.mailbox)
    with pytest.raises(QuotaExceeded) as exc:
        send(5, mailbox=box)
    assert exc.value.level.label == "reseller Reseller A"
    send(4, mailbox=box)
    send(50, mailbox=cast.b.mailbox)  # reseller B is not affected


def test_null_limits_mean_no_limit(cast):
    send(10_000, mailbox=cast.a.mailbox)
    send(10_000, mailbox=cast.a.mailbox)
    assert usage_for(cast.a.customer, now=T0) == {"hour": {"used": 20_000, "limit": None},
                                                  "day": {"used": 20_000, "limit": None}}


def test_exact_boundary_and_all_or_nothing(cast):
    set_limit(cast.a.mailbox, send_per_hour=10)
    send(8, mailbox=cast.a.mailbox)
    with pytest.raises(QuotaExceeded):
        send(3, mailbox=cast.a.mailbox)  # 11 > 10: refused whole, nothing counted
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk, now=T0)["hour"] == 8
    send(2, mailbox=cast.a.mailbox)  # exactly 10
    with pytest.raises(QuotaExceeded):
        send(1, mailbox=cast.a.mailbox)
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk, now=T0)["hour"] == 10


def test_refusal_counts_nothing_at_any_level(cast):
    set_limit(cast.a.customer, send_per_hour=1)
    with pytest.raises(QuotaExceeded):
        send(2, mailbox=cast.a.mailbox)
    assert not SendUsage.objects.exists()


def test_rolled_back_transaction_uses_no_quota(cast):
    with pytest.raises(ZeroDivisionError):
        with transaction.atomic():
            check_and_count(mailbox=cast.a.mailbox, recipients=4, now=T0)
            1 / 0  # the message could not be stored
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk, now=T0) == {"hour": 0, "day": 0}


def test_rolling_hour_frees_sixty_minutes_after_each_minute(cast):
    set_limit(cast.a.mailbox, send_per_hour=10)
    send(6, mailbox=cast.a.mailbox, now=T0)  # bucket 14:05
    send(4, mailbox=cast.a.mailbox, now=T0 + timedelta(minutes=20))  # bucket 14:25
    with pytest.raises(QuotaExceeded) as exc:
        send(1, mailbox=cast.a.mailbox, now=T0 + timedelta(minutes=59, seconds=29))  # 15:04:59
    assert exc.value.retry_at == datetime(2026, 11, 25, 15, 5, tzinfo=UTC)
    send(6, mailbox=cast.a.mailbox, now=datetime(2026, 11, 25, 15, 5, tzinfo=UTC))  # 14:05 left the window
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk, now=T0 + timedelta(hours=1)) == {
        "hour": 10, "day": 16}


def test_retry_at_is_when_enough_has_freed(cast):
    set_limit(cast.a.mailbox, send_per_hour=10)
    send(3, mailbox=cast.a.mailbox, now=T0)  # 14:05
    send(7, mailbox=cast.a.mailbox, now=T0 + timedelta(minutes=10))  # 14:15
    with pytest.raises(QuotaExceeded) as exc:
        send(5, mailbox=cast.a.mailbox, now=T0 + timedelta(minutes=30))
    # 3 free at 15:05, not enough for 5; the next 7 free at 15:15.
    assert exc.value.retry_at == datetime(2026, 11, 25, 15, 15, tzinfo=UTC)
    assert str(exc.value) == ("Sending limit reached: 10 recipients per hour for mailbox info@alpha.test; "
                              "try again after 15:15 UTC")


def test_rolling_day(cast):
    set_limit(cast.a.domain, send_per_day=100)
    send(100, mailbox=cast.a.mailbox, now=T0)
    with pytest.raises(QuotaExceeded) as exc:
        send(1, mailbox=cast.a.mailbox, now=T0 + timedelta(hours=2))
    assert exc.value.window == "day"
    assert str(exc.value) == ("Sending limit reached: 100 recipients per day for domain alpha.test; "
                              "try again after 2026-11-26 14:05 UTC")
    with pytest.raises(QuotaExceeded) as exc:
        send(1, mailbox=cast.a.mailbox, now=T0 + timedelta(hours=23, minutes=59))
    assert str(exc.value).endswith("try again after 14:05 UTC")  # the same day: no date
    send(100, mailbox=cast.a.mailbox, now=T0 + timedelta(days=1) - timedelta(seconds=30))  # 14:05 next day


def test_hour_and_day_limits_hold_together(cast):
    set_limit(cast.a.mailbox, send_per_hour=10, send_per_day=25)
    for hour in range(2):
        send(10, mailbox=cast.a.mailbox, now=T0 + timedelta(hours=hour))
    with pytest.raises(QuotaExceeded) as exc:
        send(10, mailbox=cast.a.mailbox, now=T0 + timedelta(hours=2))
    assert exc.value.window == "day"
    send(5, mailbox=cast.a.mailbox, now=T0 + timedelta(hours=2))


def test_more_recipients_than_the_limit_never_fit(cast):
    set_limit(cast.a.mailbox, send_per_hour=3)
    with pytest.raises(QuotaExceeded) as exc:
        send(4, mailbox=cast.a.mailbox)
    assert exc.value.retry_at is None
    assert str(exc.value).endswith("this message has more recipients than the limit allows")


def test_innermost_full_level_is_named(cast):
    set_limit(cast.a.customer, send_per_hour=5)
    set_limit(cast.a.mailbox, send_per_hour=5)
    send(5, mailbox=cast.a.mailbox)
    with pytest.raises(QuotaExceeded) as exc:
        send(1, mailbox=cast.a.mailbox)
    assert exc.value.level.scope == "mailbox"


def test_limit_change_applies_to_the_next_check(cast):
    set_limit(cast.a.customer, send_per_hour=5)
    send(5, mailbox=cast.a.mailbox)
    set_limit(cast.a.customer, send_per_hour=6)
    send(1, mailbox=cast.a.mailbox)
    set_limit(cast.a.customer, send_per_hour=2)
    with pytest.raises(QuotaExceeded):
        send(1, mailbox=cast.a.mailbox)


def test_unicode_domain_in_label(cast):
    dom = domain_create(actor=None, customer=cast.a.customer, name="bücher.test", verified=True)
    box = mailbox_create(actor=None, domain=dom, local_part="shop", password="correct horse battery")
    set_limit(box, send_per_hour=1)
    send(1, mailbox=box)
    with pytest.raises(QuotaExceeded) as exc:
        send(1, mailbox=box)
    assert exc.value.level.label == "mailbox shop@bücher.test"


def test_recipients_must_be_positive(cast):
    with pytest.raises(ValueError):
        send(0, mailbox=cast.a.mailbox)


@pytest.mark.django_db(transaction=True)
def test_check_and_count_refuses_to_run_outside_a_transaction():
    from tests.support.factories import make_tenant

    tenant = make_tenant("Solo", "solo.test")
    with pytest.raises(RuntimeError):
        check_and_count(mailbox=tenant.mailbox, recipients=1)
    assert not SendUsage.objects.exists()


def test_usage_for_every_kind_of_owner(cast, credential):
    set_limit(cast.a.customer, send_per_hour=100, send_per_day=1000)
    send(7, credential=credential)
    customer = Customer.objects.get(pk=cast.a.customer.pk)
    assert usage_for(customer, now=T0) == {"hour": {"used": 7, "limit": 100}, "day": {"used": 7, "limit": 1000}}
    for model, pk in [(Reseller, cast.reseller_a.pk), (Domain, cast.a.domain.pk), (Mailbox, cast.a.mailbox.pk),
                      (SmtpCredential, credential.pk)]:
        assert usage_for(model.objects.get(pk=pk), now=T0)["day"]["used"] == 7


def test_usage_many_reads_a_page_in_one_query(cast, django_assert_num_queries):
    send(2, mailbox=cast.a.mailbox)
    send(5, mailbox=cast.b.mailbox, now=T0 - timedelta(hours=2))
    ids = [cast.a.customer.pk, cast.b.customer.pk, cast.direct.customer.pk]
    with django_assert_num_queries(1):
        result = quotas.usage_many(scope="customer", scope_ids=ids, now=T0)
    assert result == {ids[0]: {"hour": 2, "day": 2}, ids[1]: {"hour": 0, "day": 5}, ids[2]: {"hour": 0, "day": 0}}


def test_future_buckets_are_not_counted(cast):
    send(3, mailbox=cast.a.mailbox, now=T0 + timedelta(minutes=5))
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk, now=T0) == {"hour": 0, "day": 0}


def test_purge_deletes_only_buckets_no_window_reads(cast):
    send(1, mailbox=cast.a.mailbox, now=T0 - timedelta(days=1))  # just left the day window
    send(2, mailbox=cast.a.mailbox, now=T0 - timedelta(days=1) + timedelta(minutes=1))
    deleted = quotas.purge_old_usage(now=T0)
    assert deleted == 4  # mailbox, domain, customer, reseller buckets of the oldest minute
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk, now=T0) == {"hour": 0, "day": 2}


def test_purge_runs_from_the_beat_schedule(cast):
    from accounts.tasks import purge_old_usage
    from hostingmail.celery import app

    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "accounts.quota_tasks.purge_old_usage" in tasks and "accounts.quota_tasks.purge_old_usage" in app.tasks
    send(1, mailbox=cast.a.mailbox, now=datetime.now(UTC) - timedelta(days=2))
    assert purge_old_usage() == 4


def test_unknown_sender_is_an_error_not_a_free_pass(cast):
    with pytest.raises(Mailbox.DoesNotExist):
        send(1, mailbox=Mailbox(pk=987654))
    with pytest.raises(SmtpCredential.DoesNotExist):
        send(1, credential=SmtpCredential(pk=987654))


def test_take_if_room_decides_as_take_does_without_the_refusals_details(cast):
    """The relay's accept on the event loop asks take_if_room (a refusal's retry time needs another query: such a
    batch goes to accept_messages on a thread)."""
    set_limit(cast.a.mailbox, send_per_hour=3)
    sender = ("mailbox", cast.a.mailbox.pk)
    with transaction.atomic():
        counter = quotas.Counter([sender, ("mailbox", 10**9)], now=T0)
        assert counter.take_if_room(sender, 2)
        assert not counter.take_if_room(sender, 2)  # 4 > 3: refused, nothing counted
        assert counter.take_if_room(sender, 1)
        assert not counter.take_if_room(("mailbox", 10**9), 1)  # a sender gone
        with pytest.raises(QuotaExceeded):
            counter.take(sender, 1)
        counter.flush()
    assert quotas.usage(scope="mailbox", scope_id=cast.a.mailbox.pk, now=T0)["hour"] == 3
