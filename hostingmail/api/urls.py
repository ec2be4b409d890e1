from django.urls import include, path
from rest_framework.routers import SimpleRouter

from hostingmail.api.views import aliases, credentials, customers, docs, domains, mailboxes, messages, users, webhooks

router = SimpleRouter()
router.register("customers", customers.CustomerViewSet, basename="customer")
router.register("domains", domains.DomainViewSet, basename="domain")
router.register("mailboxes", mailboxes.MailboxViewSet, basename="mailbox")
router.register("credentials", credentials.CredentialViewSet, basename="credential")
router.register("aliases", aliases.AliasViewSet, basename="alias")
router.register("messages", messages.MessageViewSet, basename="message")
router.register("users", users.PanelUserViewSet, basename="user")
router.register("webhooks", webhooks.WebhookViewSet, basename="webhook")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.DocsView.as_view(url_name="api:schema"), name="docs"),
]
