from django.urls import path

from accounts import views_plan as views

app_name = "plan"

urlpatterns = [
    path("", views.plan, name="home"),
    path("domains/<int:pk>/", views.domain_limits, name="domain"),
    path("mailboxes/<int:pk>/", views.mailbox_limits, name="mailbox"),
]
