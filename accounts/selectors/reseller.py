"""Reads for the reseller console: a constant number of queries per page."""

from datetime import date, timedelta

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas, sending_history
from accounts.models import Alias, Customer, Domain, Mailbox, Reseller, SendUsage

# What a reseller hands out from its pool: pool field -> the customer plan field summed against it.
POOL = {"max_domains": "max_domains", "max_mailboxes": "max_mailboxes", "max_storage_mb": "max_storage_mb",
        "send_per_hour": "send_per_hour", "send_per_day": "send_per_day", "max_aliases": "max_aliases"}
# ?sort= value -> the column ordered by; "-" in front reverses.
CUSTOMER_SORTS = {"name": "name", "status": "status", "domains": "n_domains", "mailboxes": "n_mailboxes",
                  "storage": "storage_mb", "sent": "sent_day", "created": "created_at"}


def subtotal(qs: QuerySet, group: str, expression) -> Coalesce:
    # A correlated subquery per row: counts stay right without the row multiplication of joined aggregates.
    return Coalesce(Subquery(qs.order_by().values(group).annotate(v=expression).values("v")[:1],
                             output_field=IntegerField()), Value(0))


def customers_with_usage(reseller: Reseller, *, sort: str = "name", query: str = "") -> QuerySet[Customer]:
    """The reseller's customers (those whose name contains `query`) with n_domains, n_mailboxes, storage_mb
    (allocated) and sent_day annotated."""
    day_start = timezone.now() - timedelta(days=1)
    domains = Domain.objects.filter(customer=OuterRef("pk"))
    mailboxes = Mailbox.objects.filter(domain__customer=OuterRef("pk"))
    sent = SendUsage.objects.filter(scope=SendUsage.Scope.CUSTOMER, scope_id=OuterRef("pk"), minute__gte=day_start)
    qs = Customer.objects.filter(reseller=reseller).annotate(
        n_domains=subtotal(domains, "customer", Count("id")),
        n_mailboxes=subtotal(mailboxes, "domain__customer", Count("id")),
        storage_mb=subtotal(mailboxes, "domain__customer", Sum("quota_mb")),
        sent_day=subtotal(sent, "scope_id", Sum("count")),
    )
    if query.strip():
        qs = qs.filter(name__icontains=query.strip())
    key = sort.lstrip("-")
    column = CUSTOMER_SORTS.get(key, "name")
    descending = sort.startswith("-") and key in CUSTOMER_SORTS
    return qs.order_by(f"-{column}" if descending else column, "pk")


def pool_handed_out(reseller: Reseller, *, exclude: Customer | None = None) -> dict:
    """What a reseller's customers hold of its pool (empty sending limits count as nothing handed out)."""
    qs = Customer.objects.filter(reseller=reseller)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    sums = qs.aggregate(customers=Count("id"), **{f: Sum(f) for f in POOL.values()})
    return {"max_customers": sums.pop("customers"), **{k: sums[v] or 0 for k, v in POOL.items()}}


def pool_overview(reseller: Reseller) -> list[dict]:
    """One usage bar per pool field: what is handed out to customers against the pool, and what they use."""
    handed = pool_handed_out(reseller)
    customers = Customer.objects.filter(reseller=reseller)
    used_domains = Domain.objects.filter(customer__reseller=reseller).count()
    boxes = Mailbox.objects.filter(domain__customer__reseller=reseller).aggregate(n=Count("id"), mb=Sum("quota_mb"))
    sent = quotas.usage(scope=SendUsage.Scope.RESELLER, scope_id=reseller.pk)
    rows = [
        (_("Customers"), reseller.max_customers, handed["max_customers"], customers.count()),
        (_("Domains"), reseller.max_domains, handed["max_domains"], used_domains),
        (_("Mailboxes"), reseller.max_mailboxes, handed["max_mailboxes"], boxes["n"]),
        (_("Storage (MB)"), reseller.max_storage_mb, handed["max_storage_mb"], boxes["mb"] or 0),
        (_("Sending per hour"), reseller.send_per_hour, handed["send_per_hour"], sent["hour"]),
        (_("Sending per day"), reseller.send_per_day, handed["send_per_day"], sent["day"]),
        (_("Aliases"), reseller.max_aliases, handed["max_aliases"],
         Alias.objects.filter(domain__customer__reseller=reseller).count()),
    ]
    return [{"label": label, "used": handed_out, "limit": pool, "note": _("%(count)s in use") % {"count": used},
             "left": None if pool is None else max(pool - handed_out, 0)}
            for label, pool, handed_out, used in rows]


def sending_by_day(reseller: Reseller, *, days: int = 14) -> list[tuple[date, int]]:
    """Recipients accepted for the reseller's customers per day, oldest first, days without mail as 0."""
    return sending_history.daily_totals(scope=SendUsage.Scope.CUSTOMER, days=days,
                                        scope_ids=Customer.objects.filter(reseller=reseller).values("pk"))
