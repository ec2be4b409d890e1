"""Ending SMTP logins that are open now: the customer's login generation (Customer.login_generation).

The relay reads a session's customer generation at each MAIL and compares it with the one read at AUTH; when it
moved, the session's login is looked up again and the session stops if it is no longer good. Every service that
revokes a login calls `logins_end` inside its transaction.
"""

from django.db.models import F

from accounts.models import Customer, Domain, HoldRequest, Mailbox, Reseller, SmtpCredential
from accounts.services.workers import notify_after_commit

# The relay's task (relay.delivery.held.hold_queued) names the sender by one of these.
HOLD_SCOPES = {SmtpCredential: "credential", Mailbox: "mailbox", Domain: "domain", Customer: "customer",
               Reseller: "reseller"}


def logins_end(*, customer_ids: list[int] = (), reseller_id: int | None = None) -> None:
    """Open SMTP sessions of these customers (or of every customer of the reseller) check their login again."""
    if customer_ids:
        Customer.objects.filter(pk__in=list(customer_ids)).update(login_generation=F("login_generation") + 1)
    if reseller_id is not None:
        Customer.objects.filter(reseller_id=reseller_id).update(login_generation=F("login_generation") + 1)


def hold_queued(*, obj: SmtpCredential | Mailbox | Domain | Customer | Reseller, reason: str) -> None:
    """Hold what `obj` queued and has not delivered yet: a request stored with the change, which the relay's
    workers carry out at once when told, or at their next sweep when the notice is lost (accounts never imports
    relay); support then releases or cancels each message from the message log."""
    request = HoldRequest.objects.create(scope=HOLD_SCOPES[type(obj)], object_id=obj.pk, reason=reason[:200])
    notify_after_commit("relay.tasks.hold_queued", kwargs={
        "scope": request.scope, "object_id": request.object_id, "reason": request.reason, "request_id": request.pk})
