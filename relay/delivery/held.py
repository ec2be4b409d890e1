"""Mail held while its customer (or the customer's reseller) is suspended goes back to the queue on restore."""

from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Status
from accounts.services.audit_log import audit
from relay.handoff import enqueue
from relay.models import QueuedMessage


def release_held(*, customer_id: int) -> int:
    """A restored customer's held messages go back to the queue; returns how many."""
    with transaction.atomic():
        customer = Customer.objects.select_related("reseller").get(pk=customer_id)
        if customer.status != Status.ACTIVE or (customer.reseller and customer.reseller.status != Status.ACTIVE):
            return 0
        held = list(QueuedMessage.objects.select_for_update().filter(customer=customer,
                                                                     state=QueuedMessage.State.HELD))
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
