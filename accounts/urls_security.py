from django.urls import path

from accounts import views_audit, views_security

app_name = "security"

urlpatterns = [
    path("login/code/", views_security.code_view, name="code"),
    path("login/two-factor/", views_security.enrol_view, name="enrol"),
    path("security/", views_security.security_page, name="page"),
    path("security/recovery-codes/", views_security.recovery_codes_view, name="recovery_codes"),
    path("security/two-factor/off/", views_security.otp_disable_view, name="otp_disable"),
    path("security/sessions/<int:pk>/revoke/", views_security.session_revoke_view, name="session_revoke"),
    path("security/sessions/others/revoke/", views_security.sessions_revoke_others_view, name="sessions_revoke_others"),
    path("audit/", views_audit.audit_log, name="audit_log"),
]
