"""Webhook endpoints: list (with a notice for any disabled after failing), register (the signing secret is shown
once, on the page the registration redirects to), delete, the delivery log of one, redeliver, switch a disabled one
back on.

A customer manages its own endpoints, a reseller admin its reseller's (and sees its customers'); support sees all
and registers through the API, where it names the owner."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import selectors
from accounts.forms.webhooks import WebhookForm
from accounts.models import User, WebhookDelivery, WebhookEndpoint
from accounts.services import webhooks
from accounts.views.common import client_ip, paginate, role_required, shown_once_keep, shown_once_take, submit

ROLES = (User.Role.SUPPORT, User.Role.RESELLER, User.Role.CUSTOMER)


def _get_webhook_for_user(request, pk) -> WebhookEndpoint:
    return get_object_or_404(selectors.webhook_endpoints_visible_to(request.user), pk=pk)


@role_required(*ROLES)
def webhook_list(request):
    endpoints = selectors.webhook_endpoints_visible_to(request.user)
    return render(request, "accounts/webhooks/list.html", {
        "page": paginate(request, endpoints), "disabled": endpoints.filter(is_active=False)})


@role_required(User.Role.RESELLER, User.Role.CUSTOMER)
@never_cache
def webhook_add(request):
    form = WebhookForm(request.POST or None)
    new = submit(request, form, lambda data: webhooks.webhook_endpoint_create(
        actor=request.user, url=data["url"], events=data["events"], description=data["description"],
        client_ip=client_ip(request)), failure=_("The endpoint was not registered; see the errors below."))
    if new is not None:
        shown_once_keep(request, kind="webhook", pk=new.endpoint.pk, secret=new.secret)
        return redirect("webhook_created", pk=new.endpoint.pk)
    return render(request, "accounts/webhooks/add.html", {"form": form})


@role_required(User.Role.RESELLER, User.Role.CUSTOMER)
@never_cache
def webhook_created(request, pk):
    endpoint = _get_webhook_for_user(request, pk)
    return render(request, "accounts/webhooks/created.html", {
        "endpoint": endpoint, "secret": shown_once_take(request, kind="webhook", pk=endpoint.pk)})


@role_required(*ROLES)
def webhook_detail(request, pk):
    endpoint = _get_webhook_for_user(request, pk)
    return render(request, "accounts/webhooks/detail.html", {
        "endpoint": endpoint, "page": paginate(request, selectors.webhook_deliveries_of(endpoint))})


@role_required(*ROLES)
@require_POST
def webhook_delete(request, pk):
    endpoint = _get_webhook_for_user(request, pk)
    webhooks.webhook_endpoint_delete(actor=request.user, endpoint=endpoint, client_ip=client_ip(request))
    messages.success(request, _("The endpoint %(url)s was deleted; it gets no more events.") % {"url": endpoint.url})
    return redirect("webhook_list")


@role_required(*ROLES)
@require_POST
def webhook_enable(request, pk):
    endpoint = _get_webhook_for_user(request, pk)
    webhooks.webhook_endpoint_enable(actor=request.user, endpoint=endpoint, client_ip=client_ip(request))
    messages.success(request, _("The endpoint is on again; what it missed is being sent."))
    return redirect("webhook_detail", pk=endpoint.pk)


@role_required(*ROLES)
@require_POST
def webhook_redeliver(request, pk):
    delivery = get_object_or_404(WebhookDelivery.objects.select_related("event").filter(
        endpoint__in=selectors.webhook_endpoints_visible_to(request.user)), pk=pk)
    webhooks.webhook_redeliver(actor=request.user, delivery=delivery, client_ip=client_ip(request))
    messages.success(request, _("Event %(uuid)s will be sent again.") % {"uuid": delivery.event.uuid})
    return redirect("webhook_detail", pk=delivery.endpoint_id)
