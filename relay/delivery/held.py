"""Held mail: while its customer (or the customer's reseller) is suspended, delivery holds it and a restore sends
it on; when a login may have leaked, what it queued is held on revocation or suspension until support releases
(retries) or cancels each message (relay.panel.services)."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Customer, Domain, HoldRequest, Mailbox, Reseller, SmtpCredential, Status
from accounts.services.audit_log import audit
from relay.handoff import enqueue
from relay.models import QueuedMessage

# A hold for a leaked login says so first: restoring the customer does not release it, support does.
LEAKED_LOGIN = "Held for support: "
_SCOPES = {
    "credential": (SmtpCredential, lambda pk: Q(credential_id=pk)),
    "mailbox": (Mailbox, lambda pk: Q(mailbox_id=pk)),  # its own logins and credentials bound to it
    "domain": (Domain, lambda pk: Q(domain_id=pk)),
    "customer": (Customer, lambda pk: Q(customer_id=pk)),
    "reseller": (Reseller, lambda pk: Q(customer__reseller_id=pk)),
}


def hold_queued(*, scope: str, object_id: int, reason: str, request_id: int | None = None) -> int:
    """Hold the messages this sender queued that no worker has delivered yet; returns how many. A message a worker
    is delivering right now finishes that attempt."""
    model, sent_by = _SCOPES[scope]
    with transaction.atomic():
        if request_id is not None:
            # Carried out once, whether the task or the sweep gets there first.
            if not HoldRequest.objects.filter(pk=request_id, applied_at__isnull=True).update(applied_at=timezone.now()):
                return 0
        obj = model.objects.filter(pk=object_id).first()
        if obj is None:
            return 0
        waiting = QueuedMessage.objects.filter(
            sent_by(object_id), state__in=(QueuedMessage.State.QUEUED, QueuedMessage.State.DEFERRED))
        held = waiting.update(state=QueuedMessage.State.HELD, state_reason=f"{LEAKED_LOGIN}{reason}"[:300])
        if held:
            audit(actor=None, action="messages.hold", obj=obj, after={"held": held}, reason=reason[:500])
    return held


def pending_hold_requests() -> int:
    """Hold requests whose notice never reached a worker (the broker was down); returns how many were carried out."""
    pending = list(HoldRequest.objects.filter(applied_at__isnull=True).order_by("pk")[:1000])
    for request in pending:
        hold_queued(scope=request.scope, object_id=request.object_id, reason=request.reason, request_id=request.pk)
    return len(pending)


def suspension_holds():
    """Held messages that a restore of their customer sends on (not those held for a leaked login)."""
    return QueuedMessage.objects.filter(state=QueuedMessage.State.HELD).exclude(state_reason__startswith=LEAKED_LOGIN)


def release_held(*, customer_id: int) -> int:
    """A restored customer's held messages go back to the queue; returns how many."""
    with transaction.atomic():
        customer = Customer.objects.select_related("reseller").get(pk=customer_id)
        if customer.status != Status.ACTIVE or (customer.reseller and customer.reseller.status != Status.ACTIVE):
            return 0
        held = list(suspension_holds().select_for_update().filter(customer=customer))
        now = timezone.now()
        for message in held:
            message.state = QueuedMessage.State.DEFERRED if message.attempts else QueuedMessage.State.QUEUED
            message.state_reason, message.next_attempt_at = "", now
            message.save(update_fields=["state", "state_reason", "next_attempt_at"])
        if held:
            audit(actor=None, action="messages.release", obj=customer, after={"released": len(held)},
                  reason="customer restored")
        ids = [m.pk for m in held]
        transaction.on_commit(lambda: enqueue(ids))
    return len(held)
