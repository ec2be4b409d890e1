"""Customers' panel users: list, read, create (a customer's reseller admins or support), set a password."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from accounts import selectors
from accounts.models import User
from accounts.services import tenants
from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet, object_id


@extend_schema(tags=["users"])
class PanelUserViewSet(ApiViewSet):
    serializer_class = s.PanelUserSerializer

    model = User

    def visible_to(self, user):
        return selectors.panel_users_visible_to(user).order_by("username", "id")

    @extend_schema(parameters=[OpenApiParameter("customer", int)])
    def list(self, request):
        qs = self.list_rows()
        if customer := request.query_params.get("customer"):
            qs = qs.filter(customer_id=object_id(customer))
        return self.page(qs)

    def retrieve(self, request, pk):
        return self.ok(s.PanelUserSerializer(self.visible(self.get_queryset(), pk)).data)

    @extend_schema(request=s.PanelUserCreateSerializer, responses={201: s.PanelUserSerializer})
    @idempotent
    def create(self, request):
        data = self.parse(s.PanelUserCreateSerializer)
        actor = request.user
        if "customer" in data:
            customer = self.visible(selectors.customers_visible_to(actor), data["customer"])
        elif actor.role == User.Role.CUSTOMER:
            customer = actor.customer
        else:
            raise ValidationError({"customer": ["Say which customer the user is for."]})
        user = tenants.customer_user_create(actor=actor, customer=customer, username=data["username"],
                                            password=data["password"], email=data["email"], client_ip=self.ip())
        return self.ok(s.PanelUserSerializer(user).data, status.HTTP_201_CREATED)

    @extend_schema(request=s.UserPasswordSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def password(self, request, pk):
        user = self.visible(self.get_queryset(), pk)
        data = self.parse(s.UserPasswordSerializer)
        tenants.customer_user_set_password(actor=request.user, user=user, password=data["password"],
                                           client_ip=self.ip())
        return self.ok(None, status.HTTP_204_NO_CONTENT)
