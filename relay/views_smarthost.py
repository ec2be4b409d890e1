"""Support routes a sender domain through its own smart host (issue: smart host per sender domain)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render

from accounts.selectors import domains_visible_to
from accounts.views_common import apply_errors, client_ip
from accounts.views_security import support_required
from relay import services
from relay.forms import SmartHostForm


@support_required
def domain_smarthost(request, pk):
    domain = get_object_or_404(domains_visible_to(request.user), pk=pk)
    form = SmartHostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.domain_smarthost_set(actor=request.user, domain=domain, url=form.cleaned_data["url"],
                                          reason=form.cleaned_data["reason"], client_ip=client_ip(request))
        except ValidationError as error:
            apply_errors(form, error)
        else:
            route = "its smart host" if form.cleaned_data["url"] else "MX lookup"
            messages.success(request, f"Mail from {domain.unicode_name} now goes by {route}.")
            return redirect("support:customer", domain.customer_id)
    return render(request, "relay/domain_smarthost.html", {
        "form": form, "domain": domain, "current": services.redacted_url(domain.smarthost_url),
    })
