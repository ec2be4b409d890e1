from django.urls import path

from accounts import views, views_clients, views_credentials, views_domains, views_mailboxes, views_self

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("customers/<int:pk>/", views.customer_dashboard, name="customer_dashboard"),
    path("domains/", views_domains.domain_list, name="domain_list"),
    path("domains/add/", views_domains.domain_add, name="domain_add"),
    path("domains/<int:pk>/", views_domains.domain_detail, name="domain_detail"),
    path("domains/<int:pk>/check/", views_domains.domain_check, name="domain_check"),
    path("domains/<int:pk>/delete/", views_domains.domain_delete, name="domain_delete"),
    path("domains/<int:domain_pk>/mailboxes/add/", views_mailboxes.mailbox_add, name="mailbox_add"),
    path("mailboxes/", views_mailboxes.mailbox_list, name="mailbox_list"),
    path("mailboxes/<int:pk>/", views_mailboxes.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<int:pk>/password/", views_mailboxes.mailbox_password, name="mailbox_password"),
    path("mailboxes/<int:pk>/smtp/", views_mailboxes.mailbox_smtp, name="mailbox_smtp"),
    path("mailboxes/<int:pk>/delete/", views_mailboxes.mailbox_delete, name="mailbox_delete"),
    path("mailboxes/<int:pk>/settings/", views_clients.mailbox_settings, name="mailbox_settings"),
    path("mailboxes/<int:pk>/settings.mobileconfig", views_clients.mailbox_mobileconfig, name="mailbox_mobileconfig"),
    path("credentials/", views_credentials.credential_list, name="credential_list"),
    path("credentials/add/", views_credentials.credential_add, name="credential_add"),
    path("credentials/<int:pk>/settings/", views_clients.credential_settings, name="credential_settings"),
    path("credentials/<int:pk>/settings.mobileconfig", views_clients.credential_mobileconfig,
         name="credential_mobileconfig"),
    path("credentials/<int:pk>/revoke/", views_credentials.credential_revoke, name="credential_revoke"),
    path("me/password/", views_self.own_password, name="own_password"),
    path("account/password/", views_self.account_password, name="account_password"),
    # Mail clients' automatic setup: public, answered for domains hosted here only.
    path(".well-known/autoconfig/mail/config-v1.1.xml", views_clients.autoconfig, name="autoconfig_wellknown"),
    path("mail/config-v1.1.xml", views_clients.autoconfig, name="autoconfig"),
    path("autodiscover/autodiscover.xml", views_clients.autodiscover, name="autodiscover"),
    path("Autodiscover/Autodiscover.xml", views_clients.autodiscover),
]
