"""What every API view shares: the tenant-scoped object getter, input parsing, the client address."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import translation
from rest_framework import viewsets
from rest_framework.response import Response

from accounts.views.common import client_ip


MAX_ID = 2**63 - 1
# What a domain row carries that no list shows: its DKIM keys (kilobytes each) and its last DNS check.
DOMAIN_HEAVY_FIELDS = ("dkim_private_key", "dkim_public_key", "dns_status")


def object_id(value) -> int:
    try:
        pk = int(str(value))
    except ValueError:
        raise Http404 from None
    if not 0 < pk <= MAX_ID:
        raise Http404
    return pk


class InEnglish:
    """The API answers in English whatever Accept-Language says: billing systems and scripts read its error texts,
    and its reference lists the models' choice labels. The services' messages are translated for the panel only."""

    def dispatch(self, request, *args, **kwargs):
        with translation.override("en"):
            response = super().dispatch(request, *args, **kwargs)
            response.render()
        response["Content-Language"] = "en"
        return response


class ApiViewSet(InEnglish, viewsets.GenericViewSet):
    """A view over one subject. get_queryset() is the panel's selector for the key's user: an object outside it
    is a 404, exactly as on the panel's pages."""

    model = None  # the subject's model, for the schema (generated without a user)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.visible_to(self.request.user)

    def visible_to(self, user):
        raise NotImplementedError

    def of_domain_or_customer(self, qs):
        """A list of objects that belong to a domain, narrowed to one domain (?domain=) or one customer
        (?customer=); an id that cannot be one answers 404 as a missing object does."""
        if domain := self.request.query_params.get("domain"):
            qs = qs.filter(domain_id=object_id(domain))
        if customer := self.request.query_params.get("customer"):
            qs = qs.filter(domain__customer_id=object_id(customer))
        return qs

    def list_rows(self, domain: str | None = None):
        """get_queryset() for a list page: a list names related objects by id, so the selector's joins go, except
        the domain a row's address is made of (`domain`: its path; "" for domains themselves), fetched without
        its heavy fields (bench/README.md: 0.62 of the time of a support key's credentials page at scale)."""
        qs = self.get_queryset().select_related(None)
        if domain is None:
            return qs
        if domain:
            qs = qs.select_related(domain)
        return qs.defer(*(f"{domain}__{f}" if domain else f for f in DOMAIN_HEAVY_FIELDS))

    def ip(self) -> str | None:
        return client_ip(self.request)

    def parse(self, serializer_class, *, partial: bool = False) -> dict:
        serializer = serializer_class(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def visible(self, queryset, pk):
        """The object with this id among those the user may see; 404 for anything else (an id that is not a
        number, or one no database column could hold, included)."""
        return get_object_or_404(queryset, pk=object_id(pk))

    def page(self, queryset, serializer_class=None):
        page = self.paginate_queryset(queryset)
        serializer = (serializer_class or self.get_serializer_class())(page, many=True)
        return self.get_paginated_response(serializer.data)

    def ok(self, data, status: int = 200) -> Response:
        return Response(data, status=status)
