"""Domains: add, read (with the DNS records to publish and their status), delete, check DNS now."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from accounts import dnscheck, selectors
from accounts.models import Domain, User
from accounts.normalize import domain_search_term
from accounts.services import domains
from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet, object_id


def _detail(domain: Domain) -> dict:
    domain.__dict__.update(dnscheck.records_to_publish(domain))
    return s.DomainDetailSerializer(domain).data


@extend_schema(tags=["domains"])
class DomainViewSet(ApiViewSet):
    serializer_class = s.DomainSerializer

    model = Domain

    def visible_to(self, user):
        return selectors.domains_visible_to(user).order_by("name")

    @extend_schema(parameters=[
        OpenApiParameter("customer", int), OpenApiParameter("name", str, description="Part of the name."),
        OpenApiParameter("status", str, enum=[c for c, _ in Domain.DomainStatus.choices])])
    def list(self, request):
        qs = self.list_rows("")
        if customer := request.query_params.get("customer"):
            qs = qs.filter(customer_id=object_id(customer))
        if name := request.query_params.get("name", "").strip():
            qs = qs.filter(name__icontains=domain_search_term(name))
        if state := request.query_params.get("status"):
            qs = qs.filter(status=state)
        return self.page(qs)

    @extend_schema(responses={200: s.DomainDetailSerializer})
    def retrieve(self, request, pk):
        return self.ok(_detail(self.visible(self.get_queryset(), pk)))

    @extend_schema(request=s.DomainCreateSerializer, responses={201: s.DomainDetailSerializer})
    @idempotent
    def create(self, request):
        data = self.parse(s.DomainCreateSerializer)
        user = request.user
        if "customer" in data:
            customer = self.visible(selectors.customers_visible_to(user), data["customer"])
        elif user.role == User.Role.CUSTOMER:
            customer = user.customer
        else:
            raise ValidationError({"customer": ["Say which customer the domain is for."]})
        domain = domains.domain_create(actor=user, customer=customer, name=data["name"], client_ip=self.ip())
        return self.ok(_detail(domain), status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk):
        domain = self.visible(self.get_queryset(), pk)
        domains.domain_delete(actor=request.user, domain=domain, client_ip=self.ip())
        return self.ok(None, status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: s.DomainDetailSerializer})
    @action(detail=True, methods=["post"])
    def check(self, request, pk):
        """Look for the ownership proof (verifying the domain when found), then check its records, now."""
        domain = self.visible(self.get_queryset(), pk)
        domain = domains.domain_check_now(actor=request.user, domain=domain, client_ip=self.ip())
        return self.ok(_detail(domain))
