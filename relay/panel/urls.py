from django.urls import path

from relay.panel.views import lockouts, messages, quarantine, smarthost

app_name = "relay"

urlpatterns = [
    path("messages/", messages.message_list, name="message_list"),
    path("messages/<int:pk>/", messages.message_detail, name="message_detail"),
    path("messages/<int:pk>/retry/", messages.message_retry, name="message_retry"),
    path("messages/<int:pk>/cancel/", messages.message_cancel, name="message_cancel"),
    path("quarantine/", quarantine.quarantine_list, name="quarantine_list"),
    path("quarantine/<int:pk>/release/", quarantine.quarantine_release_view, name="quarantine_release"),
    path("quarantine/<int:pk>/delete/", quarantine.quarantine_delete_view, name="quarantine_delete"),
    path("quarantine/release/<str:token>/", quarantine.quarantine_link, name="quarantine_link"),
    path("lockouts/", lockouts.lockout_list, name="lockout_list"),
    path("lockouts/<int:pk>/lift/", lockouts.lockout_lift, name="lockout_lift"),
    path("support/domains/<int:pk>/smarthost/", smarthost.domain_smarthost, name="domain_smarthost"),
]
