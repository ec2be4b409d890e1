"""Reads of the message log, scoped by tenant the same way as accounts.selectors."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Customer, Reseller, User
from accounts.selectors import customers_visible_to
from relay.models import DeliveryAttempt, QueuedMessage, Recipient


def messages_visible_to(user: User) -> QuerySet[QueuedMessage]:
    qs = QueuedMessage.objects.all()
    if user.is_support:
        return qs
    if user.role == User.Role.MAILBOX:
        if not user.mailbox_id:
            return qs.none()
        # Sent with the mailbox's own login, or with an app credential scoped to that mailbox.
        return qs.filter(Q(mailbox_id=user.mailbox_id) | Q(credential__mailbox_id=user.mailbox_id))
    return qs.filter(customer__in=customers_visible_to(user).values("pk"))


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


def message_search(qs: QuerySet[QueuedMessage], f: MessageFilter) -> QuerySet[QueuedMessage]:
    """The log page's rows: filtered, with what a row shows fetched in a fixed number of queries."""
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
        .annotate(recipient_count=Count("recipients", distinct=True))
        .prefetch_related(Prefetch("recipients", queryset=Recipient.objects.only("id", "message_id", "address", "state")))
        .order_by("-created_at", "-id")
    )


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


def sending_per_day(*, messages: QuerySet[QueuedMessage], days: int = 14, today: date | None = None) -> list[dict]:
    """Recipients accepted per day over the last `days` days and where they stand now, in one query.

    A day's "sent" is every recipient accepted that day (bounces the relay itself sent are not counted);
    delivered, deferred and bounced are how many of those recipients are in that state.
    """
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    rows = (
        Recipient.objects.filter(message__in=messages.filter(is_bounce=False).values("pk"),
                                 message__created_at__gte=_start_of(first))
        .annotate(day=TruncDate("message__created_at"))
        .values("day")
        .annotate(
            sent=Count("id"),
            delivered=Count("id", filter=Q(state=Recipient.State.DELIVERED)),
            deferred=Count("id", filter=Q(state=Recipient.State.DEFERRED)),
            bounced=Count("id", filter=Q(state=Recipient.State.BOUNCED)),
        )
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
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
