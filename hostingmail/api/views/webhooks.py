"""Webhook endpoints: create (the signing secret is in that answer only), list, read, delete, their delivery log,
and sending a delivery again."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action

from accounts import selectors
from accounts.models import WebhookEndpoint
from accounts.services import webhooks
from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet


@extend_schema(tags=["webhooks"])
class WebhookViewSet(ApiViewSet):
    serializer_class = s.WebhookSerializer

    model = WebhookEndpoint

    def visible_to(self, user):
        return selectors.webhook_endpoints_visible_to(user).order_by("-created_at", "-id")

    def list(self, request):
        return self.page(self.get_queryset())

    def retrieve(self, request, pk):
        return self.ok(s.WebhookSerializer(self.visible(self.get_queryset(), pk)).data)

    @extend_schema(request=s.WebhookCreateSerializer, responses={201: s.NewWebhookSerializer})
    @idempotent
    def create(self, request):
        data = self.parse(s.WebhookCreateSerializer)
        user = request.user
        customer = self.visible(selectors.customers_visible_to(user), data["customer"]) if "customer" in data else None
        reseller = self.visible(selectors.resellers_visible_to(user), data["reseller"]) if "reseller" in data else None
        new = webhooks.webhook_endpoint_create(actor=user, url=data["url"], events=data["events"], customer=customer,
                                               reseller=reseller, description=data["description"], client_ip=self.ip())
        new.endpoint.secret = new.secret
        return self.ok(s.NewWebhookSerializer(new.endpoint).data, status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk):
        endpoint = self.visible(self.get_queryset(), pk)
        webhooks.webhook_endpoint_delete(actor=request.user, endpoint=endpoint, client_ip=self.ip())
        return self.ok(None, status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: s.WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk):
        endpoint = self.visible(self.get_queryset(), pk)
        return self.page(selectors.webhook_deliveries_of(endpoint), s.WebhookDeliverySerializer)

    @extend_schema(request=s.RedeliverSerializer, responses={202: s.WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk):
        endpoint = self.visible(self.get_queryset(), pk)
        data = self.parse(s.RedeliverSerializer)
        delivery = self.visible(selectors.webhook_deliveries_of(endpoint), data["delivery"])
        delivery = webhooks.webhook_redeliver(actor=request.user, delivery=delivery, client_ip=self.ip())
        return self.ok(s.WebhookDeliverySerializer(delivery).data, status.HTTP_202_ACCEPTED)
