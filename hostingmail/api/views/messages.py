"""The message log: list and filter, detail with each recipient's attempts and replies, sending per day; support's
retry and cancel (the panel's role gate: other roles get 403 whoever's message it is)."""

from datetime import date

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet, object_id
from relay.models import QueuedMessage
from relay.panel import selectors, services


def _date(params, name: str) -> date | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError({name: ["Enter a date as YYYY-MM-DD."]}) from None


# What a list row shows: the panel's search without its customer join, and without the columns only the
# message's own page shows (rspamd's symbols, Authentication-Results, the content).
LIST_FIELDS = [f for f in s.MessageSerializer.Meta.fields if f not in ("recipients", "recipient_count")]
DETAIL_FIELDS = [f for f in s.MessageDetailSerializer.Meta.fields if f != "recipients"]


class DayStatsSerializer(serializers.Serializer):
    day = serializers.DateField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    deferred = serializers.IntegerField()
    bounced = serializers.IntegerField()


@extend_schema(tags=["messages"])
class MessageViewSet(ApiViewSet):
    serializer_class = s.MessageSerializer

    model = QueuedMessage

    def visible_to(self, user):
        return selectors.messages_visible_to(user)

    def _support_only(self):
        if not self.request.user.is_support:
            raise PermissionDenied("Only support staff retry or cancel messages.")

    @extend_schema(parameters=[
        OpenApiParameter("state", str, enum=[c for c, _ in QueuedMessage.State.choices]),
        OpenApiParameter("sender", str, description="Part of the envelope or From: sender."),
        OpenApiParameter("recipient", str, description="Part of a recipient's address."),
        OpenApiParameter("subject", str), OpenApiParameter("customer", int),
        OpenApiParameter("date_from", str, description="YYYY-MM-DD, inclusive."),
        OpenApiParameter("date_to", str, description="YYYY-MM-DD, inclusive.")])
    def list(self, request):
        params = request.query_params
        qs = self.get_queryset()
        if customer := params.get("customer"):
            qs = qs.filter(customer_id=object_id(customer))
        state = params.get("state", "")
        if state and state not in QueuedMessage.State.values:
            raise ValidationError({"state": [f"One of {', '.join(QueuedMessage.State.values)}."]})
        search = selectors.MessageFilter(recipient=params.get("recipient", "").strip(),
                                         sender=params.get("sender", "").strip(),
                                         subject=params.get("subject", "").strip(), state=state,
                                         date_from=_date(params, "date_from"), date_to=_date(params, "date_to"))
        rows = selectors.message_search(qs, search).select_related(None).only(*LIST_FIELDS)
        page = self.paginate_queryset(rows)
        selectors.with_recipient_counts(page)
        return self.get_paginated_response(s.MessageSerializer(page, many=True).data)

    @extend_schema(responses={200: s.MessageDetailSerializer})
    def retrieve(self, request, pk):
        # The panel's message_detail without what the API does not show: the related objects (ids here), the bounces
        # sent back, the spam check's details.
        qs = self.get_queryset().only(*DETAIL_FIELDS).prefetch_related("recipients", "delivery_attempts")
        message = self.visible(qs, pk)
        return self.ok(s.MessageDetailSerializer(message).data)

    @extend_schema(parameters=[OpenApiParameter("days", int, description="1 to 90; 14 if left out.")],
                   responses={200: DayStatsSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def stats(self, request):
        """Recipients accepted per day and where they stand now (delivered, deferred, bounced)."""
        try:
            days = int(request.query_params.get("days", 14))
        except ValueError:
            days = 0
        if not 1 <= days <= 90:
            raise ValidationError({"days": ["Enter a number of days from 1 to 90."]})
        # The dashboard's chart: support's whole-system days before today come from the cache.
        rows = selectors.sending_chart_days(user=request.user, days=days)
        return self.ok(DayStatsSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={200: s.MessageSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def retry(self, request, pk):
        self._support_only()
        message = self.visible(self.get_queryset(), pk)
        message = services.message_retry_now(actor=request.user, message=message, client_ip=self.ip())
        return self.ok(self._row(message))

    @extend_schema(request=s.CancelSerializer, responses={200: s.MessageSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk):
        self._support_only()
        message = self.visible(self.get_queryset(), pk)
        data = self.parse(s.CancelSerializer)
        message = services.message_cancel(actor=request.user, message=message, bounce=data["bounce"],
                                          reason=data["reason"], client_ip=self.ip())
        return self.ok(self._row(message))

    def _row(self, message):
        row = selectors.message_search(self.get_queryset().filter(pk=message.pk), selectors.MessageFilter()).get()
        return s.MessageSerializer(selectors.with_recipient_counts([row])[0]).data
