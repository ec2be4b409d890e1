from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from accounts import quotas, sending_history
from accounts.models import SendUsage, SendUsageHourly

Scope = SendUsage.Scope
NOW = datetime(2026, 11, 20, 12, 30, tzinfo=dt_timezone.utc)


def _bucket(scope, scope_id, minute, count):
    SendUsage.objects.create(scope=scope, scope_id=scope_id, minute=minute, count=count)


def test_rollup_keeps_complete_hours_of_customers_and_resellers(db):
    _bucket(Scope.CUSTOMER, 1, NOW - timedelta(minutes=5), 3)  # 12:25
    _bucket(Scope.CUSTOMER, 1, NOW - timedelta(minutes=20), 4)  # 12:10, same hour
    _bucket(Scope.CUSTOMER, 1, NOW - timedelta(hours=2), 5)  # 10:30
    _bucket(Scope.RESELLER, 9, NOW - timedelta(hours=2), 5)
    _bucket(Scope.MAILBOX, 7, NOW - timedelta(hours=2), 5)  # no chart reads mailboxes
    # 12:20 the day before: its hour (12:00-13:00) may have lost minutes to the purge already.
    _bucket(Scope.CUSTOMER, 1, NOW - timedelta(days=1, minutes=10), 99)
    assert sending_history.rollup_send_usage(now=NOW) == 3
    rows = {(r.scope, r.scope_id, r.hour.hour): r.count for r in SendUsageHourly.objects.all()}
    assert rows == {(Scope.CUSTOMER, 1, 12): 7, (Scope.CUSTOMER, 1, 10): 5, (Scope.RESELLER, 9, 10): 5}
    # Run again after more mail: the hour's total is replaced, not added to.
    _bucket(Scope.CUSTOMER, 1, NOW - timedelta(minutes=1), 2)
    sending_history.rollup_send_usage(now=NOW)
    assert SendUsageHourly.objects.get(scope=Scope.CUSTOMER, hour__hour=12).count == 9


def test_daily_totals_survive_the_purge_of_minute_buckets(db):
    for days_ago in (0, 1, 5, 13, 14):
        _bucket(Scope.CUSTOMER, 1, NOW - timedelta(days=days_ago), 10 + days_ago)
    # Roll up each day in turn, as beat would, then purge the minute buckets as the quota upkeep does.
    for days_ago in (14, 13, 5, 1, 0):
        sending_history.rollup_send_usage(now=NOW - timedelta(days=days_ago) + timedelta(hours=2))
    quotas.purge_old_usage(now=NOW)
    assert SendUsage.objects.count() == 1  # only today's bucket is left
    points = sending_history.daily_totals(scope=Scope.CUSTOMER, scope_ids=[1], days=14, now=NOW)
    totals = dict(points)
    assert len(points) == 14 and points[-1][0] == NOW.date()
    assert totals[NOW.date()] == 10
    assert totals[(NOW - timedelta(days=1)).date()] == 11
    assert totals[(NOW - timedelta(days=5)).date()] == 15
    assert totals[(NOW - timedelta(days=13)).date()] == 23
    assert sum(totals.values()) == 10 + 11 + 15 + 23  # 14 days ago is outside the chart


def test_recent_hours_come_from_the_minute_buckets_and_are_not_counted_twice(db):
    _bucket(Scope.CUSTOMER, 1, NOW - timedelta(hours=3), 4)
    sending_history.rollup_send_usage(now=NOW)
    assert sending_history.daily_totals(scope=Scope.CUSTOMER, scope_ids=[1], now=NOW)[-1] == (NOW.date(), 4)


def test_rollup_task_is_scheduled():
    from hostingmail.celery import app

    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "accounts.history_tasks.rollup_send_usage" in tasks and "accounts.history_tasks.rollup_send_usage" in app.tasks


def test_rollup_drops_hours_older_than_the_charts_show(db):
    old = SendUsageHourly.objects.create(scope=Scope.CUSTOMER, scope_id=1, hour=NOW - timedelta(days=16), count=1)
    kept = SendUsageHourly.objects.create(scope=Scope.CUSTOMER, scope_id=1, hour=NOW - timedelta(days=14), count=1)
    sending_history.rollup_send_usage(now=NOW)
    assert list(SendUsageHourly.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not SendUsageHourly.objects.filter(pk=old.pk).exists()
