"""Aliases: create, list, read, change destinations / description / on-off, delete."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status

from accounts import selectors
from accounts.models import Alias
from accounts.services import aliases
from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet


@extend_schema(tags=["aliases"])
class AliasViewSet(ApiViewSet):
    serializer_class = s.AliasSerializer

    model = Alias

    def visible_to(self, user):
        return selectors.aliases_visible_to(user).order_by("domain__name", "local_part")

    @extend_schema(parameters=[OpenApiParameter("domain", int), OpenApiParameter("customer", int)])
    def list(self, request):
        qs = self.of_domain_or_customer(self.list_rows("domain"))
        return self.page(qs)

    def retrieve(self, request, pk):
        return self.ok(s.AliasSerializer(self.visible(self.get_queryset(), pk)).data)

    @extend_schema(request=s.AliasCreateSerializer, responses={201: s.AliasSerializer})
    @idempotent
    def create(self, request):
        data = self.parse(s.AliasCreateSerializer)
        domain = self.visible(selectors.domains_visible_to(request.user), data.pop("domain"))
        alias = aliases.alias_create(actor=request.user, domain=domain, client_ip=self.ip(), **data)
        return self.ok(s.AliasSerializer(alias).data, status.HTTP_201_CREATED)

    @extend_schema(request=s.AliasUpdateSerializer, responses={200: s.AliasSerializer})
    def partial_update(self, request, pk):
        alias = self.visible(self.get_queryset(), pk)
        data = self.parse(s.AliasUpdateSerializer, partial=True)
        alias = aliases.alias_update(actor=request.user, alias=alias, client_ip=self.ip(), **data)
        return self.ok(s.AliasSerializer(alias).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk):
        alias = self.visible(self.get_queryset(), pk)
        aliases.alias_delete(actor=request.user, alias=alias, client_ip=self.ip())
        return self.ok(None, status.HTTP_204_NO_CONTENT)
