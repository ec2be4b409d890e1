"""AUTH lockouts: each role sees those of its own usernames; support lifts them (relay.panel.services)."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.views.common import client_ip, flash_outcome, role_required
from relay.models import AuthLockout
from relay.panel import selectors, services


def _get_lockout_for_user(request, pk) -> AuthLockout:
    return get_object_or_404(selectors.lockouts_visible_to(request.user), pk=pk)


@login_required
def lockout_list(request):
    now = timezone.now()
    # Active ones, and those that ended in the last week.
    recent_since = now - timedelta(days=7)
    lockouts = list(selectors.lockouts_visible_to(request.user).filter(locked_until__gt=recent_since)[:200])
    active = [lo for lo in lockouts if lo.lifted_at is None and lo.locked_until > now]
    recent = [lo for lo in lockouts if lo not in active]
    return render(request, "relay/lockout_list.html", {
        "active": active, "recent": recent, "is_support": request.user.is_support,
    })


@login_required  # signed in first, then the method, then the role
@require_POST
@role_required(User.Role.SUPPORT, verified=True)
def lockout_lift(request, pk):
    item = _get_lockout_for_user(request, pk)
    reason = request.POST.get("reason", "").strip()[:300]
    flash_outcome(request, lambda: services.lockout_lift(actor=request.user, lockout=item, reason=reason,
                                                         client_ip=client_ip(request)),
                  _("The lockout of %(value)s is lifted.") % {"value": item.value})
    return redirect("relay:lockout_list")
