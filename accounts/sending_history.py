"""Sending history for charts. The minute buckets of accounts.quotas only live for the rolling day; before the
purge takes them, their customer and reseller totals are rolled up per hour into SendUsageHourly."""

from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from accounts.models import SendUsage, SendUsageHourly

Scope = SendUsage.Scope
SCOPES = (Scope.CUSTOMER, Scope.RESELLER)
# The charts show 14 days; one more covers the time zones' offsets.
KEEP_DAYS = 15


def complete_from(now: datetime) -> datetime:
    """The first hour whose minute buckets are all still kept: the purge drops those the rolling day no longer
    reads, so the hour the day's window starts in may have lost its first minutes."""
    return (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def rollup_send_usage(*, now: datetime | None = None) -> int:
    """Write the hourly totals of every complete hour still in the minute buckets, drop those older than the
    charts show; returns how many hours were written.

    Idempotent: an hour's total is recomputed from its buckets and replaces the stored one. Run it more often
    than once a day (beat: hourly) and no hour is lost.
    """
    now = now or timezone.now()
    rows = (SendUsage.objects.filter(scope__in=SCOPES, minute__gte=complete_from(now))
            .annotate(hour=TruncHour("minute", tzinfo=dt_timezone.utc))
            .values("scope", "scope_id", "hour").annotate(total=Sum("count")))
    hourly = [SendUsageHourly(scope=r["scope"], scope_id=r["scope_id"], hour=r["hour"], count=r["total"])
              for r in rows]
    with transaction.atomic():
        SendUsageHourly.objects.bulk_create(hourly, batch_size=1000, update_conflicts=True,
                                            unique_fields=["scope", "scope_id", "hour"], update_fields=["count"])
        SendUsageHourly.objects.filter(hour__lt=now - timedelta(days=KEEP_DAYS)).delete()
    return len(hourly)


def daily_totals(*, scope: str, scope_ids: QuerySet | list, days: int = 14,
                 now: datetime | None = None) -> list[tuple]:
    """[(date, recipients)] for the last `days` local days, oldest first: complete hours from the hourly
    totals, the rest (the last day or so) straight from the minute buckets. Two queries."""
    now = now or timezone.now()
    first = timezone.localdate(now) - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    cutoff = max(complete_from(now), since)
    totals: dict = {}
    for qs, column in (
        (SendUsageHourly.objects.filter(hour__gte=since, hour__lt=cutoff), "hour"),
        (SendUsage.objects.filter(minute__gte=cutoff), "minute"),
    ):
        rows = (qs.filter(scope=scope, scope_id__in=scope_ids).annotate(day=TruncDate(column))
                .values("day").annotate(total=Sum("count")))
        for row in rows:
            totals[row["day"]] = totals.get(row["day"], 0) + row["total"]
    return [(first + timedelta(days=i), totals.get(first + timedelta(days=i), 0)) for i in range(days)]
