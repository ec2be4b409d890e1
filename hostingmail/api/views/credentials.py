"""SMTP credentials: create (the secret is in that answer only), list, read, revoke."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from accounts import selectors
from accounts.models import SmtpCredential
from accounts.services import credentials
from hostingmail.api import serializers as s
from hostingmail.api.idempotency import idempotent
from hostingmail.api.views.common import ApiViewSet, object_id


@extend_schema(tags=["credentials"])
class CredentialViewSet(ApiViewSet):
    serializer_class = s.CredentialSerializer

    model = SmtpCredential

    def visible_to(self, user):
        return selectors.credentials_visible_to(user).order_by("-created_at", "-id")

    @extend_schema(parameters=[OpenApiParameter("domain", int), OpenApiParameter("mailbox", int),
                               OpenApiParameter("active", bool, description="Only live (or only revoked or "
                                                                           "disabled) credentials.")])
    def list(self, request):
        qs = self.list_rows()
        if domain := request.query_params.get("domain"):
            qs = qs.filter(domain_id=object_id(domain))
        if mailbox := request.query_params.get("mailbox"):
            qs = qs.filter(mailbox_id=object_id(mailbox))
        if (active := request.query_params.get("active")) in ("true", "false"):
            qs = qs.filter(is_active=active == "true", **({"revoked_at__isnull": True} if active == "true" else {}))
        return self.page(qs)

    def retrieve(self, request, pk):
        return self.ok(s.CredentialSerializer(self.visible(self.get_queryset(), pk)).data)

    @extend_schema(request=s.CredentialCreateSerializer, responses={201: s.NewCredentialSerializer})
    @idempotent
    def create(self, request):
        data = self.parse(s.CredentialCreateSerializer)
        user = request.user
        if ("mailbox" in data) == ("domain" in data):
            raise ValidationError({"mailbox": ["Give either a mailbox or a domain as the scope."]})
        if "mailbox" in data:
            mailbox = self.visible(selectors.mailboxes_visible_to(user), data["mailbox"])
            domain = mailbox.domain
        else:
            mailbox, domain = None, self.visible(selectors.domains_visible_to(user), data["domain"])
        new = credentials.credential_create(
            actor=user, domain=domain, mailbox=mailbox, description=data["description"],
            allowed_networks=data["allowed_networks"], expires_at=data["expires_at"], client_ip=self.ip())
        new.credential.secret = new.secret
        return self.ok(s.NewCredentialSerializer(new.credential).data, status.HTTP_201_CREATED)

    @extend_schema(request=s.RevokeSerializer, responses={200: s.CredentialSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def revoke(self, request, pk):
        credential = self.visible(self.get_queryset(), pk)
        data = self.parse(s.RevokeSerializer)
        if credential.revoked_at is None:
            credential = credentials.credential_revoke(actor=request.user, credential=credential, hold=data["hold"],
                                                       client_ip=self.ip())
        return self.ok(s.CredentialSerializer(credential).data)
