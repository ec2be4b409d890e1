from django.urls import path

from hostingmail.support import views

app_name = "support"

urlpatterns = [
    path("", views.home, name="home"),
    path("customers/<int:pk>/", views.customer, name="customer"),
]
for _kind, _plural in (("customer", "customers"), ("domain", "domains"), ("mailbox", "mailboxes"),
                       ("credential", "credentials")):
    urlpatterns += [
        path(f"{_plural}/<int:pk>/limits/", views.limits_edit, {"kind": _kind}, name=f"{_kind}_limits"),
        path(f"{_plural}/<int:pk>/status/", views.status_edit, {"kind": _kind}, name=f"{_kind}_status"),
    ]
