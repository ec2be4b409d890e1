"""The quarantine: held messages listed for everyone who sees them in the message log (sender, subject, score,
symbols), released or deleted; and the digest's release link, which needs no sign-in (its signature is the key)."""

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.views.common import client_ip, paginate
from relay.delivery.quarantine import read_token
from relay.models import QueuedMessage
from relay.panel import selectors
from relay.panel.quarantine import quarantine_delete, quarantine_release
from relay.panel.views.messages import _get_message_for_user


@login_required
def quarantine_list(request):
    held = (selectors.messages_visible_to(request.user).filter(state=QueuedMessage.State.QUARANTINED)
            .select_related("customer").defer("content").prefetch_related("recipients").order_by("-created_at", "-id"))
    return render(request, "relay/quarantine_list.html", {"page": paginate(request, held),
                                                          "retention": settings.QUARANTINE_RETENTION_DAYS})


def _release(request, message, *, via: str = "") -> None:
    try:
        problem = quarantine_release(actor=request.user if request.user.is_authenticated else None, message=message,
                                     learn=request.POST.get("learn") == "on", via=via, client_ip=client_ip(request))
    except ValidationError as exc:
        flash.error(request, " ".join(exc.messages))
        return
    flash.success(request, _("Message %(queue_id)s is released: it is being delivered to the inbox.")
                  % {"queue_id": message.queue_id})
    if problem:
        flash.warning(request, _("It was not learned as ham: %(problem)s.") % {"problem": problem})


@login_required
@require_POST
def quarantine_release_view(request, pk):
    _release(request, _get_message_for_user(request, pk))
    return redirect("relay:quarantine_list")


@login_required
@require_POST
def quarantine_delete_view(request, pk):
    message = _get_message_for_user(request, pk)
    try:
        quarantine_delete(actor=request.user, message=message, client_ip=client_ip(request))
        flash.success(request, _("Message %(queue_id)s is deleted.") % {"queue_id": message.queue_id})
    except ValidationError as exc:
        flash.error(request, " ".join(exc.messages))
    return redirect("relay:quarantine_list")


def quarantine_link(request, token):
    """GET shows what the link releases (so that a mail scanner opening links releases nothing); POST releases."""
    try:
        message_id, mailbox_id = read_token(token)
        message = QueuedMessage.objects.defer("content").get(pk=message_id, recipients__mailbox_id=mailbox_id)
    except (signing.BadSignature, QueuedMessage.DoesNotExist, ValueError):
        return render(request, "relay/quarantine_link.html", {"invalid": True}, status=404)
    if request.method == "POST":
        _release(request, message, via=" (digest link)")
        message.refresh_from_db(fields=["state"])
    held = message.state == QueuedMessage.State.QUARANTINED
    return render(request, "relay/quarantine_link.html", {"message": message, "held": held})
