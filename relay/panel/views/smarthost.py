"""Support routes a sender domain through its own smart host (issue: smart host per sender domain)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import domains_visible_to
from accounts.views.common import client_ip, role_required, submit
from relay.panel import services
from relay.panel.forms import SmartHostForm


@role_required(User.Role.SUPPORT, verified=True)
def domain_smarthost(request, pk):
    domain = get_object_or_404(domains_visible_to(request.user), pk=pk)
    form = SmartHostForm(request.POST or None)
    saved = submit(request, form, lambda data: services.domain_smarthost_set(
        actor=request.user, domain=domain, url=data["url"], reason=data["reason"], client_ip=client_ip(request)),
        failure=_("The route was not changed; see the errors below."))
    if saved is not None:
        if saved.smarthost_url:
            done = _("Mail from %(domain)s now goes by its smart host.")
        else:
            done = _("Mail from %(domain)s now goes by MX lookup.")
        messages.success(request, done % {"domain": domain.unicode_name})
        return redirect("support:customer", domain.customer_id)
    return render(request, "relay/domain_smarthost.html", {
        "form": form, "domain": domain, "current": services.redacted_url(domain.smarthost_url),
    })
