"""The message log and lockout pages. Support acts on messages through relay.panel.services; reads go through selectors."""

from datetime import timedelta

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.views.common import CappedPaginator, role_required
from relay.models import AuthLockout, QueuedMessage
from relay.panel import selectors, services
from relay.panel.forms import PAGE_SIZES, MessageCancelForm, MessageSearchForm


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _get_message_for_user(request, pk) -> QueuedMessage:
    return get_object_or_404(selectors.message_detail(selectors.messages_visible_to(request.user), pk))


def _get_lockout_for_user(request, pk) -> AuthLockout:
    return get_object_or_404(selectors.lockouts_visible_to(request.user), pk=pk)


def _flash_outcome(request, action, success: str) -> None:
    """Run a service call; its refusal (a ValidationError) is shown to the user instead of the success note."""
    try:
        action()
    except ValidationError as exc:
        flash.error(request, " ".join(exc.messages))
    else:
        flash.success(request, success)


@login_required
def message_list(request):
    form = MessageSearchForm(request.GET or None, staff=request.user.role in (User.Role.SUPPORT, User.Role.RESELLER))
    qs = selectors.messages_visible_to(request.user)
    per_page = PAGE_SIZES[0]
    if form.is_bound and form.is_valid():
        qs = selectors.message_search(qs, form.to_filter())
        per_page = form.cleaned_data["per_page"]
    elif form.is_bound:
        qs = qs.none()
    else:
        qs = selectors.message_search(qs, selectors.MessageFilter())
    page = CappedPaginator(qs, per_page).get_page(request.GET.get("page"))
    page.object_list = selectors.with_recipient_counts(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "relay/message_list.html", {
        "form": form, "page": page, "query": query.urlencode(), "is_support": request.user.is_support,
    })


@login_required
def message_detail(request, pk):
    message = _get_message_for_user(request, pk)
    return render(request, "relay/message_detail.html", {
        "message": message, "is_support": request.user.is_support,
        "can_act": request.user.is_support and message.state in _ACTIONABLE,
        "cancel_form": MessageCancelForm(), "now": timezone.now(),
    })


# Support may retry or cancel only what is still waiting to go out.
_ACTIONABLE = {QueuedMessage.State.QUEUED, QueuedMessage.State.DEFERRED, QueuedMessage.State.HELD}


@login_required
@require_POST
@role_required(User.Role.SUPPORT, verified=True)
def message_retry(request, pk):
    message = _get_message_for_user(request, pk)
    _flash_outcome(request, lambda: services.message_retry_now(actor=request.user, message=message,
                                                                       client_ip=_client_ip(request)),
                   f"Message {message.queue_id} will be tried again now.")
    return redirect("relay:message_detail", pk=message.pk)


@role_required(User.Role.SUPPORT, verified=True)
def message_cancel(request, pk):
    message = _get_message_for_user(request, pk)
    form = MessageCancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        bounce = form.cleaned_data["action"] == "bounce"
        try:
            services.message_cancel(actor=request.user, message=message, bounce=bounce,
                                    reason=form.cleaned_data["reason"], client_ip=_client_ip(request))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            done = "cancelled and bounced to the sender" if bounce else "cancelled and discarded"
            flash.success(request, f"Message {message.queue_id} {done}.")
            return redirect("relay:message_detail", pk=message.pk)
    return render(request, "relay/message_cancel.html", {"message": message, "form": form},
                  status=400 if form.errors else 200)


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


@login_required
@require_POST
@role_required(User.Role.SUPPORT, verified=True)
def lockout_lift(request, pk):
    item = _get_lockout_for_user(request, pk)
    reason = request.POST.get("reason", "").strip()[:300]
    _flash_outcome(request, lambda: services.lockout_lift(actor=request.user, lockout=item, reason=reason,
                                                         client_ip=_client_ip(request)),
                   f"The lockout of {item.value} is lifted.")
    return redirect("relay:lockout_list")
