"""Customers: the reseller's billing lifecycle (create, read, change package, suspend, restore, delete, usage)."""

from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action

from accounts import selectors
from accounts.models import Customer, Mailbox, SendUsage, User
from accounts.services import login_links, suspension, tenants
from accounts.services.limits import PLAN_FIELDS, limit_set
from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet
from relay.models import Recipient


@extend_schema(tags=["customers"])
class CustomerViewSet(ApiViewSet):
    serializer_class = s.CustomerSerializer

    model = Customer

    def visible_to(self, user):
        return selectors.customers_visible_to(user).order_by("name", "id")

    @extend_schema(parameters=[
        OpenApiParameter("name", str, description="Part of the name, any case."),
        OpenApiParameter("external_id", str, description="The reseller's own id, exactly."),
        OpenApiParameter("status", str, enum=["active", "suspended"])])
    def list(self, request):
        qs = self.list_rows()
        if name := request.query_params.get("name", "").strip():
            qs = qs.filter(name__icontains=name)
        if "external_id" in request.query_params:
            qs = qs.filter(external_id=request.query_params["external_id"].strip())
        if state := request.query_params.get("status", ""):
            qs = qs.filter(status=state)
        return self.page(qs)

    def retrieve(self, request, pk):
        return self.ok(s.CustomerSerializer(self.visible(self.get_queryset(), pk)).data)

    @extend_schema(request=s.CustomerCreateSerializer, responses={201: s.CustomerSerializer})
    @idempotent
    def create(self, request):
        user = request.user
        if user.role != User.Role.RESELLER or not user.reseller_id:
            raise PermissionDenied("Customers are created by their reseller's admins.")
        data = self.parse(s.CustomerCreateSerializer)
        plan = {f: data[f] for f in PLAN_FIELDS if f in data}
        customer = tenants.reseller_customer_create(
            actor=user, reseller=user.reseller, name=data["name"], username=data["username"],
            password=data["password"], email=data["email"], external_id=data["external_id"], client_ip=self.ip(),
            **plan)
        return self.ok(s.CustomerSerializer(customer).data, status.HTTP_201_CREATED)

    @extend_schema(request=s.CustomerUpdateSerializer, responses={200: s.CustomerSerializer})
    def partial_update(self, request, pk):
        customer = self.visible(self.get_queryset(), pk)
        data = self.parse(s.CustomerUpdateSerializer, partial=True)
        plan = {f: data[f] for f in PLAN_FIELDS if f in data}
        details = {f: data[f] for f in ("name", "contact_email", "external_id") if f in data}
        with transaction.atomic():  # the details and the package change together, or neither
            if details:
                customer = tenants.reseller_customer_update(
                    actor=request.user, customer=customer, name=details.get("name", customer.name),
                    contact_email=details.get("contact_email", customer.contact_email),
                    external_id=details.get("external_id"), client_ip=self.ip())
            if plan:
                customer = limit_set(actor=request.user, obj=customer, changes=plan, reason=data.get("reason", ""),
                                     client_ip=self.ip())
        return self.ok(s.CustomerSerializer(self.visible(self.get_queryset(), customer.pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk):
        customer = self.visible(self.get_queryset(), pk)
        tenants.customer_delete(actor=request.user, customer=customer, client_ip=self.ip())
        return self.ok(None, status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.CustomerSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def suspend(self, request, pk):
        return self._suspend_or_restore(pk, suspension.suspend)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.CustomerSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def restore(self, request, pk):
        return self._suspend_or_restore(pk, suspension.restore)

    def _suspend_or_restore(self, pk, change):
        customer = self.visible(self.get_queryset(), pk)
        data = self.parse(s.ReasonSerializer)
        customer = change(actor=self.request.user, obj=customer, reason=data["reason"], client_ip=self.ip())
        return self.ok(s.CustomerSerializer(customer).data)

    @extend_schema(request=s.LoginLinkCreateSerializer, responses={201: s.LoginLinkSerializer})
    @action(detail=True, methods=["post"], url_path="login-links", url_name="login-links")
    @idempotent
    def login_links(self, request, pk):
        """A one-time sign-in link for one of the customer's panel users (single sign-on from a billing system):
        valid for LOGIN_LINK_SECONDS, once; a user with two-factor sign-in is still asked for a code."""
        customer = self.visible(self.get_queryset(), pk)
        data = self.parse(s.LoginLinkCreateSerializer)
        user = self.visible(selectors.panel_users_visible_to(request.user).filter(customer=customer), data["user"])
        new = login_links.login_link_create(actor=request.user, user=user, client_ip=self.ip())
        url = request.build_absolute_uri(reverse("security:login_link", args=[new.token]))
        return self.ok(s.LoginLinkSerializer({"url": url, "expires_at": new.link.expires_at, "user": user.pk,
                                              "username": user.get_username()}).data, status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.CustomerUsageSerializer})
    @action(detail=True, methods=["get"])
    def usage(self, request, pk):
        customer = self.visible(self.get_queryset(), pk)
        return self.ok(s.CustomerUsageSerializer(customer_usage(customer)).data)


def customer_usage(customer: Customer) -> dict:
    """The plan's use, storage used, and sending over the last day (the quota counters, exact) and month (the
    message log's recipients; the bounces the relay itself sent are not counted)."""
    now = timezone.now()
    sent_24h = (SendUsage.objects.filter(scope=SendUsage.Scope.CUSTOMER, scope_id=customer.pk,
                                         minute__gte=now - timedelta(days=1)).aggregate(n=Sum("count"))["n"] or 0)
    month = Recipient.objects.filter(message__customer=customer, message__is_bounce=False,
                                     message__created_at__gte=now - timedelta(days=30)).aggregate(
        sent=Count("id"), bounced=Count("id", filter=Q(state=Recipient.State.BOUNCED)))
    used = Mailbox.objects.filter(domain__customer=customer).aggregate(n=Sum("used_bytes"))["n"] or 0
    return {**selectors.customer_usage(customer), "storage_used_bytes": used, "sent_last_24h": sent_24h,
            "sent_last_30d": month["sent"], "bounced_last_30d": month["bounced"]}
