"""Ending SMTP logins that are open now: the customer's login generation (Customer.login_generation).

The relay reads a session's customer generation at each MAIL and compares it with the one read at AUTH; when it
moved, the session's login is looked up again and the session stops if it is no longer good. Every service that
revokes a login calls `logins_end` inside its transaction.
"""

from celery import current_app
from django.db import transaction
from django.db.models import F

from accounts.models import Customer, Domain, Mailbox, Reseller, SmtpCredential

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
    """After the commit, hold what `obj` queued and has not delivered yet (the relay's side does it: accounts
    never imports relay); support then releases or cancels each message from the message log."""
    scope, pk = HOLD_SCOPES[type(obj)], obj.pk
    transaction.on_commit(lambda: current_app.send_task(
        "relay.tasks.hold_queued", kwargs={"scope": scope, "object_id": pk, "reason": reason[:200]}))
