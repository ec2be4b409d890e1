"""The message log: every role sees its own messages; support retries and cancels (relay.panel.services)."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.views.common import CappedPaginator, client_ip, flash_outcome, role_required, submit
from relay.models import QueuedMessage
from relay.panel import selectors, services
from relay.panel.forms import PAGE_SIZES, MessageCancelForm, MessageSearchForm

# Support may retry or cancel only what is still waiting to go out.
_ACTIONABLE = {QueuedMessage.State.QUEUED, QueuedMessage.State.DEFERRED, QueuedMessage.State.HELD}


def _get_message_for_user(request, pk) -> QueuedMessage:
    return get_object_or_404(selectors.message_detail(selectors.messages_visible_to(request.user), pk))


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


@login_required  # signed in first, then the method, then the role
@require_POST
@role_required(User.Role.SUPPORT, verified=True)
def message_retry(request, pk):
    message = _get_message_for_user(request, pk)
    flash_outcome(request, lambda: services.message_retry_now(actor=request.user, message=message,
                                                              client_ip=client_ip(request)),
                  _("Message %(queue_id)s will be tried again now.") % {"queue_id": message.queue_id})
    return redirect("relay:message_detail", pk=message.pk)


@role_required(User.Role.SUPPORT, verified=True)
def message_cancel(request, pk):
    message = _get_message_for_user(request, pk)
    form = MessageCancelForm(request.POST or None)
    cancelled = submit(request, form, lambda data: services.message_cancel(
        actor=request.user, message=message, bounce=data["action"] == "bounce", reason=data["reason"],
        client_ip=client_ip(request)), failure=_("The message was not cancelled; see the errors below."))
    if cancelled is not None:
        if form.cleaned_data["action"] == "bounce":
            done = _("Message %(queue_id)s cancelled and bounced to the sender.")
        else:
            done = _("Message %(queue_id)s cancelled and discarded.")
        flash.success(request, done % {"queue_id": message.queue_id})
        return redirect("relay:message_detail", pk=message.pk)
    return render(request, "relay/message_cancel.html", {"message": message, "form": form},
                  status=400 if form.errors else 200)
