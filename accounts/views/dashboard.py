"""The panel's home: a customer's dashboard, a mailbox owner's page, the customers a staff member looks after."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from accounts import selectors
from accounts.models import User
from accounts.views.common import _get_customer_for_user, paginate
from accounts.views.self import mailbox_home


@login_required
def dashboard(request):
    user = request.user
    if user.role == User.Role.MAILBOX:
        return mailbox_home(request)
    if user.role == User.Role.CUSTOMER:
        if not user.customer_id:
            raise Http404("This user belongs to no customer")
        return render(request, "accounts/dashboard.html", selectors.customer_overview(user.customer))
    customers = selectors.customers_visible_to(user).order_by("name", "pk")
    q = request.GET.get("q", "").strip()
    if q:
        customers = customers.filter(name__icontains=q)
    return render(request, "accounts/staff_home.html", {"page": paginate(request, customers), "q": q})


@login_required
def customer_dashboard(request, pk):
    customer = _get_customer_for_user(request, pk)
    return render(request, "accounts/dashboard.html", selectors.customer_overview(customer))
