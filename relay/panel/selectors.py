"""Reads of the message log, scoped by tenant the same way as accounts.selectors."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Customer, Reseller, User
from accounts.selectors import by_tenant, customers_visible_to
from relay.models import AuthLockout, DeliveryAttempt, QueuedMessage, Recipient


def messages_visible_to(user: User) -> QuerySet[QueuedMessage]:
    qs = QueuedMessage.objects.all()
    if user.is_support:
        return qs
    if user.role == User.Role.MAILBOX:
        if not user.mailbox_id:
            return qs.none()
        # Sent with the mailbox's own login, or with an app credential scoped to that mailbox; or received for it.
        received = Exists(Recipient.objects.filter(message=OuterRef("pk"), mailbox_id=user.mailbox_id))
        return qs.filter(Q(mailbox_id=user.mailbox_id) | Q(credential__mailbox_id=user.mailbox_id) | received)
    # The same scope as accounts.selectors.customers_visible_to, on the message's indexed customer id.
    return by_tenant(qs, user, reseller="customer__reseller_id", customer="customer_id")


@dataclass(frozen=True)
class MessageFilter:
    customer: str = ""
    recipient: str = ""
    sender: str = ""
    subject: str = ""
    state: str = ""
    date_from: date | None = None
    date_to: date | None = None


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# A log row names this many recipients and says how many more there are: a message to thousands fetches three.
PREVIEW_RECIPIENTS = 3


def message_search(qs: QuerySet[QueuedMessage], f: MessageFilter) -> QuerySet[QueuedMessage]:
    """The log page's rows: filtered, with what a row shows fetched in a fixed number of queries.

    Nothing here joins a message to its recipients: the paginator's COUNT(*) then reads the messages only. A row
    shows its first PREVIEW_RECIPIENTS recipients (`preview_recipients`, prefetched for the page's rows only);
    with_recipient_counts adds how many it has.
    """
    if f.customer:
        qs = qs.filter(customer__name__icontains=f.customer)
    if f.recipient:
        # EXISTS rather than a join: a message with several matching recipients is still one row.
        qs = qs.filter(Exists(Recipient.objects.filter(message=OuterRef("pk"), address__icontains=f.recipient)))
    if f.sender:
        qs = qs.filter(Q(mail_from__icontains=f.sender) | Q(header_from__icontains=f.sender))
    if f.subject:
        qs = qs.filter(subject__icontains=f.subject)
    if f.state:
        qs = qs.filter(state=f.state)
    if f.date_from:
        qs = qs.filter(created_at__gte=_start_of(f.date_from))
    if f.date_to:
        qs = qs.filter(created_at__lt=_start_of(f.date_to + timedelta(days=1)))
    return (
        qs.select_related("customer")
        .defer("content")
        .prefetch_related(Prefetch(
            "recipients", to_attr="preview_recipients",
            queryset=Recipient.objects.only("id", "message_id", "address", "state")[:PREVIEW_RECIPIENTS]))
        .order_by("-created_at", "-id")
    )


def with_recipient_counts(messages: list[QueuedMessage]) -> list[QueuedMessage]:
    """Sets `recipient_count` on each of a page's messages with one grouped query over those ids only, and
    `more_recipients`: how many its preview_recipients do not name."""
    counts = dict(Recipient.objects.filter(message_id__in=[m.pk for m in messages]).order_by()
                  .values_list("message_id").annotate(n=Count("id")))
    for message in messages:
        message.recipient_count = counts.get(message.pk, 0)
        message.more_recipients = message.recipient_count - len(getattr(message, "preview_recipients", ()))
    return messages


def message_detail(qs: QuerySet[QueuedMessage], pk) -> QuerySet[QueuedMessage]:
    """One message with its recipients, attempts and bounces, ready for the message page."""
    return (
        qs.filter(pk=pk)
        .select_related("customer", "domain", "credential", "mailbox__domain", "bounce_of")
        .defer("content")
        .prefetch_related(
            "recipients",
            Prefetch("delivery_attempts", queryset=DeliveryAttempt.objects.select_related("recipient")),
            Prefetch("bounces", queryset=QueuedMessage.objects.defer("content").prefetch_related("recipients")),
        )
    )


# --- the dashboard's sending chart ------------------------------------------------------------------------

CHART_SERIES = ("sent", "delivered", "deferred", "bounced")


def _recipients_per_day(messages: QuerySet[QueuedMessage], since: datetime,
                        until: datetime | None = None) -> dict[date, dict]:
    """{day: {sent, delivered, deferred, bounced}} of the messages accepted from `since` (until `until`): one
    grouped query over the messages in that created_at range (indexed) and their recipients."""
    qs = messages.filter(is_bounce=False, direction=QueuedMessage.Direction.OUTBOUND, created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    rows = (
        qs.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            sent=Count("recipients"),
            delivered=Count("recipients", filter=Q(recipients__state=Recipient.State.DELIVERED)),
            deferred=Count("recipients", filter=Q(recipients__state=Recipient.State.DEFERRED)),
            bounced=Count("recipients", filter=Q(recipients__state=Recipient.State.BOUNCED)),
        )
        .order_by("day")
    )
    return {row["day"]: {name: row[name] for name in CHART_SERIES} for row in rows}


# A chart over every message (support's home) reads the recipients of the whole system for 14 days: its days
# before today are counted once per this many seconds and kept in the cache; today is always counted live.
PAST_DAYS_CACHE_SECONDS = 600


def sending_per_day(*, messages: QuerySet[QueuedMessage], days: int = 14, today: date | None = None,
                    cache_key: str = "") -> list[dict]:
    """Recipients accepted per day over the last `days` days and where they stand now.

    A day's "sent" is every recipient accepted that day (bounces the relay itself sent are not counted);
    delivered, deferred and bounced are how many of those recipients are in that state. One query; with a
    cache_key (which must name the scope of `messages`), the days before today come from the cache when it
    holds them (PAST_DAYS_CACHE_SECONDS) and only today is counted.
    """
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    if not cache_key:
        by_day = _recipients_per_day(messages, _start_of(first))
    else:
        key = f"relay:sending-per-day:{cache_key}:{first}:{today}"
        past = cache.get(key)
        if past is None:
            past = _recipients_per_day(messages, _start_of(first), _start_of(today))
            cache.set(key, past, PAST_DAYS_CACHE_SECONDS)
        by_day = {**past, **_recipients_per_day(messages, _start_of(today))}
    out = []
    for i in range(days):
        day = first + timedelta(days=i)
        row = by_day.get(day, {})
        out.append({"day": day, **{name: row.get(name, 0) for name in CHART_SERIES}})
    return out


def chart_messages(*, user: User, customer: Customer | None = None, reseller: Reseller | None = None):
    """The messages a chart covers: one customer's, a reseller's customers', or everything the user may see."""
    qs = messages_visible_to(user)
    if customer is not None:
        qs = qs.filter(customer=customer)
    elif reseller is not None:
        qs = qs.filter(customer__reseller=reseller)
    return qs


def sending_chart_days(*, user: User, customer: Customer | None = None, reseller: Reseller | None = None,
                       days: int = 14) -> list[dict]:
    """The days of a dashboard's chart. Support's chart of everything keeps its earlier days in the cache: it is
    the same for every support user and reads every recipient of the period."""
    whole_system = user.is_support and customer is None and reseller is None
    return sending_per_day(messages=chart_messages(user=user, customer=customer, reseller=reseller), days=days,
                           cache_key="all" if whole_system else "")


def lockouts_visible_to(user: User) -> QuerySet[AuthLockout]:
    """Support sees every lockout; a customer those of its usernames; a reseller those of its customers."""
    qs = AuthLockout.objects.select_related("customer", "lifted_by")
    if user.is_support:
        return qs  # address lockouts belong to no customer: only support sees them
    return qs.filter(customer__in=customers_visible_to(user).values("pk"))
