"""What the support console's customer page shows, read in a fixed number of queries."""

from django.utils.translation import gettext as _

from accounts import quotas, selectors
from accounts.audit_words import row_for
from accounts.models import AuditEntry, Customer, Domain, Mailbox, SmtpCredential, User
from relay.panel.selectors import lockouts_visible_to, messages_visible_to

ROWS = 100  # per section; the panel's own lists page through the rest
RECENT = 20


def _with_usage(objects: list, scope: str) -> list:
    used = quotas.usage_many(scope=scope, scope_ids=[o.pk for o in objects])
    for obj in objects:
        obj.sent = used[obj.pk]
    return objects


def sending_bars(obj, used: dict) -> list[dict]:
    return [{"label": _("Sent this hour"), "used": used["hour"], "limit": obj.send_per_hour},
            {"label": _("Sent today"), "used": used["day"], "limit": obj.send_per_day}]


def customer_page(user: User, customer: Customer) -> dict:
    domains = _with_usage(list(Domain.objects.filter(customer=customer).order_by("name")[:ROWS]), "domain")
    mailboxes = _with_usage(list(Mailbox.objects.filter(domain__customer=customer).select_related("domain")
                                 .order_by("domain__name", "local_part")[:ROWS]), "mailbox")
    credentials = _with_usage(list(SmtpCredential.objects.filter(customer=customer)
                                   .select_related("domain", "mailbox", "mailbox__domain")
                                   .order_by("-created_at")[:ROWS]), "credential")
    used = quotas.usage(scope="customer", scope_id=customer.pk)
    return {
        "customer": customer,
        "plan_usage": selectors.customer_usage(customer),
        "sending": sending_bars(customer, used),
        "domains": domains, "mailboxes": mailboxes, "credentials": credentials,
        "recent_messages": list(messages_visible_to(user).filter(customer=customer).order_by("-created_at")[:RECENT]),
        "lockouts": list(lockouts_visible_to(user).filter(customer=customer).order_by("-created_at")[:RECENT]),
        "audit": [row_for(entry, user) for entry in
                  AuditEntry.objects.filter(customer=customer).select_related("actor")[:RECENT]],
        "users": list(User.objects.filter(customer=customer).order_by("username")),
        "rows": ROWS,
    }
