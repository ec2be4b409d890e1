"""Mailboxes: create, read, change quota / SMTP access / status, set the password, delete."""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action

from accounts import selectors
from accounts.models import Mailbox
from accounts.services import mailboxes
from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet


@extend_schema(tags=["mailboxes"])
class MailboxViewSet(ApiViewSet):
    serializer_class = s.MailboxSerializer

    model = Mailbox

    def visible_to(self, user):
        return selectors.mailboxes_visible_to(user).order_by("domain__name", "local_part")

    def managed(self, pk):
        return self.visible(selectors.mailboxes_managed_by(self.request.user), pk)

    @extend_schema(parameters=[OpenApiParameter("domain", int), OpenApiParameter("customer", int),
                               OpenApiParameter("q", str, description="Part of the address or display name.")])
    def list(self, request):
        qs = self.of_domain_or_customer(self.list_rows("domain"))
        if q := request.query_params.get("q", "").strip():
            qs = qs.filter(Q(local_part__icontains=q) | Q(display_name__icontains=q) | Q(domain__name__icontains=q))
        return self.page(qs)

    def retrieve(self, request, pk):
        return self.ok(s.MailboxSerializer(self.visible(self.get_queryset(), pk)).data)

    @extend_schema(request=s.MailboxCreateSerializer, responses={201: s.MailboxSerializer})
    @idempotent
    def create(self, request):
        data = self.parse(s.MailboxCreateSerializer)
        domain = self.visible(selectors.domains_visible_to(request.user), data.pop("domain"))
        mailbox = mailboxes.mailbox_create(actor=request.user, domain=domain, client_ip=self.ip(), **data)
        return self.ok(s.MailboxSerializer(mailbox).data, status.HTTP_201_CREATED)

    @extend_schema(request=s.MailboxUpdateSerializer, responses={200: s.MailboxSerializer})
    def partial_update(self, request, pk):
        mailbox = self.managed(pk)
        changes = self.parse(s.MailboxUpdateSerializer, partial=True)
        if changes:
            mailbox = mailboxes.mailbox_update(actor=request.user, mailbox=mailbox, client_ip=self.ip(), **changes)
        return self.ok(s.MailboxSerializer(mailbox).data)

    @extend_schema(request=s.PasswordSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def password(self, request, pk):
        mailbox = self.managed(pk)
        data = self.parse(s.PasswordSerializer)
        mailboxes.mailbox_set_password(actor=request.user, mailbox=mailbox, password=data["password"],
                                       client_ip=self.ip())
        return self.ok(None, status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk):
        mailbox = self.managed(pk)
        mailboxes.mailbox_delete(actor=request.user, mailbox=mailbox, client_ip=self.ip())
        return self.ok(None, status.HTTP_204_NO_CONTENT)
