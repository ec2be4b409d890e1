from django.urls import path

from relay import views, views_smarthost

app_name = "relay"

urlpatterns = [
    path("messages/", views.message_list, name="message_list"),
    path("messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("messages/<int:pk>/retry/", views.message_retry, name="message_retry"),
    path("messages/<int:pk>/cancel/", views.message_cancel, name="message_cancel"),
    path("lockouts/", views.lockout_list, name="lockout_list"),
    path("lockouts/<int:pk>/lift/", views.lockout_lift, name="lockout_lift"),
    path("support/domains/<int:pk>/smarthost/", views_smarthost.domain_smarthost, name="domain_smarthost"),
]
