from django.urls import include, path

from accounts.views import (aliases, api_keys, audit, clients, credentials, dashboard, domains, mailboxes, plan, reseller, security,
                            self, webhooks)

security_patterns = [
    path("login/code/", security.code_view, name="code"),
    path("login/link/<str:token>/", security.login_link_view, name="login_link"),
    path("login/two-factor/", security.enrol_view, name="enrol"),
    path("security/", security.security_page, name="page"),
    path("security/recovery-codes/", security.recovery_codes_view, name="recovery_codes"),
    path("security/two-factor/off/", security.otp_disable_view, name="otp_disable"),
    path("security/sessions/<int:pk>/revoke/", security.session_revoke_view, name="session_revoke"),
    path("security/sessions/others/revoke/", security.sessions_revoke_others_view, name="sessions_revoke_others"),
    path("audit/", audit.audit_log, name="audit_log"),
]

reseller_patterns = [
    path("", reseller.home, name="home"),
    path("customers/", reseller.customer_list, name="customers"),
    path("customers/new/", reseller.customer_create, name="customer_create"),
    path("customers/<int:pk>/", reseller.customer_detail, name="customer"),
    path("customers/<int:pk>/edit/", reseller.customer_edit, name="customer_edit"),
    path("customers/<int:pk>/suspend/", reseller.customer_suspend, name="customer_suspend"),
    path("customers/<int:pk>/restore/", reseller.customer_restore, name="customer_restore"),
    path("branding/", reseller.branding, name="branding"),
]

plan_patterns = [
    path("", plan.plan, name="home"),
    path("domains/<int:pk>/", plan.domain_limits, name="domain"),
    path("mailboxes/<int:pk>/", plan.mailbox_limits, name="mailbox"),
]

urlpatterns = [
    path("", include((security_patterns, "security"))),
    path("reseller/", include((reseller_patterns, "reseller"))),
    path("plan/", include((plan_patterns, "plan"))),
    path("", dashboard.dashboard, name="dashboard"),
    path("customers/<int:pk>/", dashboard.customer_dashboard, name="customer_dashboard"),
    path("domains/", domains.domain_list, name="domain_list"),
    path("domains/add/", domains.domain_add, name="domain_add"),
    path("domains/<int:pk>/", domains.domain_detail, name="domain_detail"),
    path("domains/<int:pk>/check/", domains.domain_check, name="domain_check"),
    path("domains/<int:pk>/delete/", domains.domain_delete, name="domain_delete"),
    path("domains/<int:domain_pk>/mailboxes/add/", mailboxes.mailbox_add, name="mailbox_add"),
    path("mailboxes/", mailboxes.mailbox_list, name="mailbox_list"),
    path("mailboxes/<int:pk>/", mailboxes.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<int:pk>/password/", mailboxes.mailbox_password, name="mailbox_password"),
    path("mailboxes/<int:pk>/smtp/", mailboxes.mailbox_smtp, name="mailbox_smtp"),
    path("mailboxes/<int:pk>/delete/", mailboxes.mailbox_delete, name="mailbox_delete"),
    path("mailboxes/<int:pk>/settings/", clients.mailbox_settings, name="mailbox_settings"),
    path("mailboxes/<int:pk>/settings.mobileconfig", clients.mailbox_mobileconfig, name="mailbox_mobileconfig"),
    path("aliases/", aliases.alias_list, name="alias_list"),
    path("domains/<int:domain_pk>/aliases/add/", aliases.alias_add, name="alias_add"),
    path("aliases/<int:pk>/", aliases.alias_edit, name="alias_edit"),
    path("aliases/<int:pk>/delete/", aliases.alias_delete, name="alias_delete"),
    path("domains/<int:pk>/catchall/", aliases.domain_catchall, name="domain_catchall"),
    path("domains/<int:pk>/dmarc/", domains.domain_dmarc_reject_policy, name="domain_dmarc_reject_policy"),
    path("domains/<int:pk>/alias-of/", aliases.domain_alias_of, name="domain_alias_of"),
    path("mailboxes/<int:pk>/forwarding/", aliases.mailbox_forwarding, name="mailbox_forwarding"),
    path("credentials/", credentials.credential_list, name="credential_list"),
    path("credentials/add/", credentials.credential_add, name="credential_add"),
    path("credentials/<int:pk>/settings/", clients.credential_settings, name="credential_settings"),
    path("credentials/<int:pk>/settings.mobileconfig", clients.credential_mobileconfig,
         name="credential_mobileconfig"),
    path("credentials/<int:pk>/revoke/", credentials.credential_revoke, name="credential_revoke"),
    path("api-keys/", api_keys.api_key_list, name="api_key_list"),
    path("api-keys/add/", api_keys.api_key_add, name="api_key_add"),
    path("api-keys/<int:pk>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
    path("webhooks/", webhooks.webhook_list, name="webhook_list"),
    path("webhooks/add/", webhooks.webhook_add, name="webhook_add"),
    path("webhooks/<int:pk>/", webhooks.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/delete/", webhooks.webhook_delete, name="webhook_delete"),
    path("webhooks/<int:pk>/enable/", webhooks.webhook_enable, name="webhook_enable"),
    path("webhooks/deliveries/<int:pk>/redeliver/", webhooks.webhook_redeliver, name="webhook_redeliver"),
    path("me/password/", self.own_password, name="own_password"),
    path("account/password/", self.account_password, name="account_password"),
    # Mail clients' automatic setup: public, answered for domains hosted here only.
    path(".well-known/autoconfig/mail/config-v1.1.xml", clients.autoconfig, name="autoconfig_wellknown"),
    path("mail/config-v1.1.xml", clients.autoconfig, name="autoconfig"),
    path("autodiscover/autodiscover.xml", clients.autodiscover, name="autodiscover"),
    path("Autodiscover/Autodiscover.xml", clients.autodiscover),
]
