from django.urls import path

from accounts import views_reseller as views

app_name = "reseller"

urlpatterns = [
    path("", views.home, name="home"),
    path("customers/", views.customer_list, name="customers"),
    path("customers/new/", views.customer_create, name="customer_create"),
    path("customers/<int:pk>/", views.customer_detail, name="customer"),
    path("customers/<int:pk>/edit/", views.customer_edit, name="customer_edit"),
    path("customers/<int:pk>/suspend/", views.customer_suspend, name="customer_suspend"),
    path("customers/<int:pk>/restore/", views.customer_restore, name="customer_restore"),
    path("branding/", views.branding, name="branding"),
]
